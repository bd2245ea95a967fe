import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { GRANTORS } from '../access.js';
import { revokeGrant, type GrantDeps } from '../service.js';
import { GrantIdParams, GrantSchema } from './schemas.js';

/** The body of a revocation: an optional reason (the body may also be empty). */
const RevokeBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });

/**
 * `POST /v1/grants/{id}/revoke` (operators, `main`): body `{reason?}` (may be empty). 200 with the
 * revoked grant; the next decision no longer finds it. Revoking again answers the same grant.
 * Errors: 404 `not_found`, 409 `grant_not_revocable` (expired or rejected).
 */
export function revokeGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grants/{id}/revoke',
      operationId: 'revokeGrant',
      tags: ['grants'],
      summary: 'Revoke a grant',
      security: [SIGNED, BEARER],
      request: { params: GrantIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(RevokeBody, false) },
      responses: { 200: json('The revoked grant (the same grant when it was already revoked).', GrantSchema), ...problems(...WRITE_ERRORS, 'not_found', 'grant_not_revocable') },
    }),
    guard: requirePrincipal(GRANTORS),
    handler: async (c) => {
      const body = c.get('rawBody').length === 0 ? {} : await jsonBody(c, RevokeBody);
      const { grant } = await revokeGrant(deps, c.req.param('id')!, principalName(c.get('principal')), body.reason ?? null);
      return c.json(grant);
    },
  };
}
