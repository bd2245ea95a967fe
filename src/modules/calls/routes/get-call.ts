import { z } from 'zod';
import { BEARER, createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { CallStore } from '../store.js';
import { callView } from '../views.js';
import { CallSchema } from './schemas.js';
import type { Clock } from '../../../platform/clock.js';
import { heldView } from '../approval/service.js';
import type { CallHoldStore } from '../approval/store.js';

/**
 * `GET /v1/ext/calls/{request_id}` (agent groups): one of the caller's own calls with its receipt
 * and stored answer (`CallView`). Another group's call answers 404 `not_found`, exactly like a
 * call that does not exist, so request ids of other groups cannot be probed.
 */
export function getOwnCallOp(store: CallStore, holds?: HoldReads): Operation {
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
      return c.json(await found(store, p.group, c.req.param('request_id')!, holds));
    },
  };
}

/**
 * `GET /v1/calls/{group}/{request_id}` (operator and auditor tokens): any group's call with its
 * receipt and stored answer. 404 `not_found` when there is none.
 */
export function getAnyCallOp(store: CallStore, holds?: HoldReads): Operation {
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
    handler: async (c) => c.json(await found(store, c.req.param('group')!, c.req.param('request_id')!, holds)),
  };
}

/** What the call views read of held calls: the holds store (absent: no call is ever held) and the clock. */
export interface HoldReads {
  holds?: CallHoldStore;
  clock: Clock;
}

async function found(store: CallStore, group: string, requestId: string, holds?: HoldReads) {
  if (holds?.holds) return callViewWithHold({ calls: store, holds: holds.holds }, group, requestId, holds.clock.now());
  const row = await store.find(group, requestId);
  if (!row) throw new ApiError('not_found', `No call ${requestId} of group ${group}.`);
  return callView(row);
}

/**
 * A call's full view, with `approval` (the held request, its digest, its deadline and the
 * approvals) when it was held for per-call approval; a held call past its deadline reads
 * `expired` from that instant.
 * @throws ApiError 404 `not_found`.
 */
export async function callViewWithHold(stores: { calls: CallStore; holds?: CallHoldStore }, group: string, requestId: string, nowMs: number) {
  const held = stores.holds ? await stores.holds.get(group, requestId) : null;
  const row = held?.call ?? (await stores.calls.find(group, requestId));
  if (!row) throw new ApiError('not_found', `No call ${requestId} of group ${group}.`);
  const view = callView(row);
  if (!held) return view;
  const status = row.status === 'awaiting_approval' && nowMs >= held.hold.expiresAt ? 'expired' : row.status;
  return { ...view, status, approval: heldView(held) };
}
