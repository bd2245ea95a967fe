import type { Context } from 'hono';
import { z } from 'zod';
import { principalName } from '../../../platform/http/guard.js';
import type { GrantDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { revokeGrant } from '../service.js';

const RevokeBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });

/**
 * `POST /v1/grants/{id}/revoke` (operators, `main`): body `{reason?}` (may be empty). 200 with the
 * revoked grant; the next decision no longer finds it. Revoking again answers the same grant.
 * Errors: 404 `not_found`, 409 `grant_not_revocable` (expired or rejected).
 */
export function revokeGrantRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const body = c.get('rawBody').length === 0 ? {} : await jsonBody(c, RevokeBody);
    const { grant } = await revokeGrant(deps, c.req.param('id')!, principalName(c.get('principal')), body.reason ?? null);
    return c.json(grant);
  };
}
