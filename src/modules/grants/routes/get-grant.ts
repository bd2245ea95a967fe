import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requirePrincipal } from '../../../platform/http/guard.js';
import { GRANT_READERS } from '../access.js';
import { getGrant, type GrantDeps } from '../service.js';
import { GrantDetailSchema, GrantIdParams } from './schemas.js';

/**
 * `GET /v1/grants/{id}` (operators, auditors): the grant, its approvals and its
 * `timeline` (audit rows, oldest first). 404 `not_found`.
 */
export function getGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/grants/{id}',
      operationId: 'getGrant',
      tags: ['grants'],
      summary: 'One grant with its approvals and timeline',
      security: [BEARER],
      request: { params: GrantIdParams },
      responses: { 200: json('The grant.', GrantDetailSchema), ...problems('not_found') },
    }),
    guard: requirePrincipal(GRANT_READERS),
    handler: async (c) => c.json(await getGrant(deps, c.req.param('id')!)),
  };
}
