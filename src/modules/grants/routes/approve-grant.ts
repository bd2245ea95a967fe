import type { Context } from 'hono';
import { z } from 'zod';
import { principalName } from '../../../platform/http/guard.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { submitApproval } from '../approvals.js';
import type { GrantDeps } from '../service.js';

const ApprovalBody = z.strictObject({ jws: z.string().min(1).max(8192) });

/**
 * `POST /v1/grants/{id}/approvals` (operators, `main`, carrying an approver's signature): the body
 * is the compact JWS, either raw with `Content-Type: application/jose` (RFC 7515 §9.2.1) or as
 * JSON `{jws}`. 200 `{outcome: recorded | activated | rejected | replayed, grant}`.
 * Errors: 404 `not_found`, 422 `approval_invalid`, 403 `approver_ineligible`,
 * 409 `approval_duplicate` | `grant_not_pending`.
 */
export function approveGrantRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const jws = await readJws(c);
    const { grant, outcome } = await submitApproval(deps, c.req.param('id')!, jws, principalName(c.get('principal')));
    return c.json({ outcome, grant });
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
