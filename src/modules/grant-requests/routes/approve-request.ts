import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { REQUEST_DECIDERS } from '../access.js';
import { approveGrantRequest, type GrantRequestDeps } from '../service.js';
import { ApprovedRequestSchema, GrantRequestIdParams } from './schemas.js';

/** The body of an approval: an optional reason (the body may also be empty). */
const ApproveBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });

/**
 * `POST /v1/grant-requests/{id}/approve` (operators, `main` for another group's request): body
 * `{reason?}` (may be empty). Creates the grant through the grants service (L1/L2 `active`, L3
 * `pending_approval` until its two approvals) and links it. 200 `{request, grant}`; approving
 * again answers the same.
 * Errors: 404 `not_found`, 403 `separation_of_powers` (the requesting group), 409
 * `grant_request_not_pending` | `conflict`, 422 the grants' codes when the terms no longer pass.
 */
export function approveGrantRequestOp(deps: GrantRequestDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grant-requests/{id}/approve',
      operationId: 'approveGrantRequest',
      tags: ['grants'],
      summary: 'Approve an access request: create its grant',
      security: [SIGNED, BEARER],
      request: { params: GrantRequestIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(ApproveBody, false) },
      responses: {
        200: json('The approved request and the grant it created.', ApprovedRequestSchema),
        ...problems(...WRITE_ERRORS, 'not_found', 'separation_of_powers', 'grant_request_not_pending', 'conflict', 'level_above_ceiling', 'expiry_too_long', 'idempotency_key_reused'),
      },
    }),
    guard: requirePrincipal(REQUEST_DECIDERS),
    handler: async (c) => {
      const body = c.get('rawBody').length === 0 ? {} : await jsonBody(c, ApproveBody);
      const { request, grant } = await approveGrantRequest(deps, c.req.param('id')!, principalName(c.get('principal')), body.reason ?? null);
      return c.json({ request, grant });
    },
  };
}
