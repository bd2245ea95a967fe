import { BEARER, createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { requirePrincipal } from '../../../platform/http/guard.js';
import { requestViewers } from '../access.js';
import { getGrantRequest, type GrantRequestDeps } from '../service.js';
import { GrantRequestDetailSchema, GrantRequestIdParams } from './schemas.js';

/**
 * `GET /v1/grant-requests/{id}` (operators, auditors; an agent group for its own requests): the
 * request, its grant's status now (`grant_status`) and its `timeline`. 404 `not_found`, also for
 * another group's request.
 */
export function getGrantRequestOp(deps: GrantRequestDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/grant-requests/{id}',
      operationId: 'getGrantRequest',
      tags: ['grants'],
      summary: 'One access request, its outcome and its timeline',
      security: [SIGNED, BEARER],
      request: { params: GrantRequestIdParams },
      responses: { 200: json('The request.', GrantRequestDetailSchema), ...problems('not_found') },
    }),
    guard: requirePrincipal(requestViewers(deps.groups)),
    handler: async (c) => {
      const principal = c.get('principal');
      return c.json(await getGrantRequest(deps, c.req.param('id')!, principal.type === 'group' ? principal.group : undefined));
    },
  };
}
