import type { Context } from 'hono';
import { principalName } from '../../../platform/http/guard.js';
import type { GrantDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { amendGrant } from '../service.js';
import { AmendGrantBody } from '../terms.js';

/**
 * `PATCH /v1/grants/{id}` (operators, `main`): changes terms of a grant pending approval; earlier
 * approvals stop counting. 200 with the grant.
 * Errors: 404 `not_found`, 409 `grant_not_pending`, 422 as for creation.
 */
export function amendGrantRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const patch = await jsonBody(c, AmendGrantBody);
    return c.json(await amendGrant(deps, c.req.param('id')!, patch, principalName(c.get('principal'))));
  };
}
