import type { Context } from 'hono';
import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { ApiError } from '../../../platform/http/problem.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { GRANTORS } from '../access.js';
import { submitApproval } from '../approvals.js';
import type { GrantDeps } from '../service.js';
import { GrantIdParams, GrantSchema } from './schemas.js';

/** The JSON form of an approval: the approver's compact JWS. */
const ApprovalBody = z.strictObject({ jws: z.string().min(1).max(8192) });

/** What an approval did, and the grant after it. */
const ApprovalResult = z
  .strictObject({ outcome: z.enum(['recorded', 'activated', 'rejected', 'replayed', 'renewed']), grant: GrantSchema })
  .meta({ id: 'ApprovalResult' });

/**
 * `POST /v1/grants/{id}/approvals` (operators, `main`, carrying an approver's signature): the body
 * is the compact JWS, either raw with `Content-Type: application/jose` (RFC 7515 §9.2.1) or as
 * JSON `{jws}`. 200 `{outcome: recorded | activated | rejected | replayed, grant}`.
 * Errors: 404 `not_found`, 422 `approval_invalid`, 403 `approver_ineligible`,
 * 409 `approval_duplicate` | `grant_not_pending`, 503 `service_unavailable` (the approvers policy
 * cannot be read).
 */
export function approveGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grants/{id}/approvals',
      operationId: 'approveGrant',
      tags: ['grants'],
      summary: "Submit an approver's signed decision",
      security: [SIGNED, BEARER],
      request: {
        params: GrantIdParams,
        headers: IdempotencyKeyHeader,
        body: {
          required: true,
          content: {
            'application/jose': { schema: z.string().describe('The compact JWS (RFC 7515 §9.2.1).') },
            'application/json': { schema: ApprovalBody },
          },
        },
      },
      responses: {
        200: json('What the approval did, and the grant.', ApprovalResult),
        ...problems(...WRITE_ERRORS, 'not_found', 'approval_invalid', 'approver_ineligible', 'approval_duplicate', 'grant_not_pending'),
      },
    }),
    guard: requirePrincipal(GRANTORS),
    handler: async (c) => {
      const jws = await readJws(c);
      const { grant, outcome } = await submitApproval(deps, c.req.param('id')!, jws, principalName(c.get('principal')));
      return c.json({ outcome, grant });
    },
  };
}

async function readJws(c: Context<AppEnv>): Promise<string> {
  if ((c.req.header('content-type') ?? '').toLowerCase().startsWith('application/jose')) {
    const text = new TextDecoder().decode(c.get('rawBody')).trim();
    if (text === '') throw new ApiError('approval_invalid', 'The body is empty; send the compact JWS.');
    return text;
  }
  // A compact JWS has the shape of a JWT by design; any other secret in it is still refused.
  return (await jsonBody(c, ApprovalBody, { allow: { jws: ['jwt'] } })).jws;
}
