import type { Context } from 'hono';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { CallStore } from '../store.js';
import { callView } from '../views.js';

/**
 * `GET /v1/ext/calls/{request_id}` (agent groups): one of the caller's own calls with its receipt
 * and stored answer (`CallView`). Another group's call answers 404 `not_found`, exactly like a
 * call that does not exist, so request ids of other groups cannot be probed.
 */
export function getOwnCallRoute(store: CallStore) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const p = c.get('principal');
    if (p.type !== 'group') throw new ApiError('forbidden', 'Agent groups read their own calls here; tokens use GET /v1/calls/{group}/{request_id}.');
    return c.json(await found(store, p.group, c.req.param('request_id')!));
  };
}

/**
 * `GET /v1/calls/{group}/{request_id}` (operator and auditor tokens): any group's call with its
 * receipt and stored answer. 404 `not_found` when there is none.
 */
export function getAnyCallRoute(store: CallStore) {
  return async (c: Context<AppEnv>): Promise<Response> => c.json(await found(store, c.req.param('group')!, c.req.param('request_id')!));
}

async function found(store: CallStore, group: string, requestId: string) {
  const row = await store.find(group, requestId);
  if (!row) throw new ApiError('not_found', `No call ${requestId} of group ${group}.`);
  return callView(row);
}
