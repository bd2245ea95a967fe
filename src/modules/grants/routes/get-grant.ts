import type { Context } from 'hono';
import type { GrantDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { getGrant } from '../service.js';

/**
 * `GET /v1/grants/{id}` (operators, auditors, `main`): the grant, its approvals and its
 * `timeline` (audit rows, oldest first). 404 `not_found`.
 */
export function showGrantRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => c.json(await getGrant(deps, c.req.param('id')!));
}
