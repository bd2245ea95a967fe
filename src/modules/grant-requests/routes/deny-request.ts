import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { REQUEST_DECIDERS } from '../access.js';
import { denyGrantRequest, type GrantRequestDeps } from '../service.js';
import { GrantRequestIdParams, GrantRequestSchema } from './schemas.js';

/** The body of a denial: the reason the requesting agent will read. */
const DenyBody = z.strictObject({ reason: z.string().trim().min(1).max(1000) });

/**
 * `POST /v1/grant-requests/{id}/deny` (operators, `main` for another group's request): body
 * `{reason}`. 200 with the denied request; denying again answers the same.
 * Errors: 404 `not_found`, 403 `separation_of_powers` (the requesting group), 409
 * `grant_request_not_pending` (approved or expired).
 */
export function denyGrantRequestOp(deps: GrantRequestDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grant-requests/{id}/deny',
      operationId: 'denyGrantRequest',
      tags: ['grants'],
      summary: 'Deny an access request, with a reason',
      security: [SIGNED, BEARER],
      request: { params: GrantRequestIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(DenyBody) },
      responses: { 200: json('The denied request.', GrantRequestSchema), ...problems(...WRITE_ERRORS, 'not_found', 'separation_of_powers', 'grant_request_not_pending') },
    }),
    guard: requirePrincipal(REQUEST_DECIDERS),
    handler: async (c) => {
      const { reason } = await jsonBody(c, DenyBody);
      return c.json(await denyGrantRequest(deps, c.req.param('id')!, principalName(c.get('principal')), reason));
    },
  };
}
