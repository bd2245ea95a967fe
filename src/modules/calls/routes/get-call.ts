import { z } from 'zod';
import { BEARER, createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { CallStore } from '../store.js';
import { callView } from '../views.js';
import { CallSchema } from './schemas.js';

/**
 * `GET /v1/ext/calls/{request_id}` (agent groups): one of the caller's own calls with its receipt
 * and stored answer (`CallView`). Another group's call answers 404 `not_found`, exactly like a
 * call that does not exist, so request ids of other groups cannot be probed.
 */
export function getOwnCallOp(store: CallStore): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/ext/calls/{request_id}',
      operationId: 'getOwnCall',
      tags: ['calls'],
      summary: "One of the calling group's calls",
      security: [SIGNED],
      request: { params: z.object({ request_id: z.string().describe("The call's Idempotency-Key.") }) },
      responses: { 200: json('The call with its receipt and answer.', CallSchema), ...problems('not_found') },
    }),
    handler: async (c) => {
      const p = c.get('principal');
      if (p.type !== 'group') throw new ApiError('forbidden', 'Agent groups read their own calls here; tokens use GET /v1/calls/{group}/{request_id}.');
      return c.json(await found(store, p.group, c.req.param('request_id')!));
    },
  };
}

/**
 * `GET /v1/calls/{group}/{request_id}` (operator and auditor tokens): any group's call with its
 * receipt and stored answer. 404 `not_found` when there is none.
 */
export function getAnyCallOp(store: CallStore): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/calls/{group}/{request_id}',
      operationId: 'getCall',
      tags: ['calls'],
      summary: "Any group's call",
      security: [BEARER],
      request: { params: z.object({ group: z.string(), request_id: z.string().describe("The call's Idempotency-Key.") }) },
      responses: { 200: json('The call with its receipt and answer.', CallSchema), ...problems('not_found') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => c.json(await found(store, c.req.param('group')!, c.req.param('request_id')!)),
  };
}

async function found(store: CallStore, group: string, requestId: string) {
  const row = await store.find(group, requestId);
  if (!row) throw new ApiError('not_found', `No call ${requestId} of group ${group}.`);
  return callView(row);
}
