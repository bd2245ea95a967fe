import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { GRANTORS } from '../access.js';
import { amendGrant, type GrantDeps } from '../service.js';
import { AmendGrantBody } from '../terms.js';
import { GrantIdParams, GrantSchema } from './schemas.js';

/**
 * `PATCH /v1/grants/{id}` (operators, `main`): changes terms of a grant pending approval; earlier
 * approvals stop counting. 200 with the grant.
 * Errors: 404 `not_found`, 409 `grant_not_pending`, 422 as for creation.
 */
export function amendGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'patch',
      path: '/v1/grants/{id}',
      operationId: 'amendGrant',
      tags: ['grants'],
      summary: 'Change the terms of a pending grant',
      security: [SIGNED, BEARER],
      request: { params: GrantIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(AmendGrantBody) },
      responses: {
        200: json('The amended grant; earlier approvals no longer count.', GrantSchema),
        ...problems(...WRITE_ERRORS, 'not_found', 'grant_not_pending', 'level_above_ceiling', 'expiry_too_long'),
      },
    }),
    guard: requirePrincipal(GRANTORS),
    handler: async (c) => {
      const patch = await jsonBody(c, AmendGrantBody);
      return c.json(await amendGrant(deps, c.req.param('id')!, patch, principalName(c.get('principal'))));
    },
  };
}
