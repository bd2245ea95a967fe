import type { Context } from 'hono';
import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { principalName, requirePrincipal, type Access } from '../../../platform/http/guard.js';
import { ApiError } from '../../../platform/http/problem.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { submitCallApproval, type CallApprovalDeps } from '../approval/service.js';
import { callViewWithHold } from './get-call.js';
import { CallSchema } from './schemas.js';

/** Who may carry an approver's signed approval of a held call: operators and `main` (the signature is the authority). */
const CARRIERS: Access = { roles: ['operator'], groups: ['main'] };

const ApprovalBody = z.strictObject({ jws: z.string().min(1).max(8192) });

/** What an approval did, the call after it and, once it ran, its answer. */
const CallApprovalResult = z
  .strictObject({
    outcome: z.enum(['recorded', 'executed', 'replayed']),
    call: CallSchema,
    answer: z
      .strictObject({ status: z.number().int(), body: z.unknown() })
      .nullable()
      .describe('The answer of the call once it ran (what its Idempotency-Key replays); null until then.'),
  })
  .meta({ id: 'CallApprovalResult' });

/**
 * `POST /v1/calls/{group}/{request_id}/approvals` (operators, `main`, carrying an approver's
 * signature): the body is the compact JWS over the held request's digest, raw with
 * `Content-Type: application/jose` or as JSON `{jws}`. 200 `{outcome: recorded | executed |
 * replayed, call, answer}`: the second approval (two approvers of two groups, neither the calling
 * group) runs the call once, and `answer` is its outcome.
 * Errors: 404 `not_found`, 422 `approval_invalid` (also an approval over another request digest),
 * 403 `approver_ineligible`, 409 `approval_duplicate` | `call_not_awaiting_approval` |
 * `call_approval_expired`, the call path's decision codes when the call would be refused now.
 */
export function approveCallOp(deps: CallApprovalDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/calls/{group}/{request_id}/approvals',
      operationId: 'approveCall',
      tags: ['calls'],
      summary: "Submit an approver's signed approval of a held call",
      security: [SIGNED, BEARER],
      request: {
        params: z.object({ group: z.string(), request_id: z.string().describe("The held call's Idempotency-Key.") }),
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
        200: json('What the approval did, the call, and its answer once it ran.', CallApprovalResult),
        ...problems(
          ...WRITE_ERRORS,
          'not_found',
          'approval_invalid',
          'approver_ineligible',
          'approval_duplicate',
          'call_not_awaiting_approval',
          'call_approval_expired',
          'no_capability',
          'capability_expired',
          'action_denied',
          'task_state',
          'disabled_by_operator',
          'backpressure',
          'provider_unavailable',
        ),
      },
    }),
    guard: requirePrincipal(CARRIERS),
    handler: async (c) => {
      const group = c.req.param('group')!;
      const requestId = c.req.param('request_id')!;
      const jws = await readJws(c);
      const { outcome, answer } = await submitCallApproval(deps, group, requestId, jws, principalName(c.get('principal')), c.get('log'));
      const call = await callViewWithHold(deps.stores, group, requestId, deps.clock.now());
      return c.json({ outcome, call, answer: answer ? { status: answer.status, body: JSON.parse(answer.body) as unknown } : null });
    },
  };
}

async function readJws(c: Context<AppEnv>): Promise<string> {
  if ((c.req.header('content-type') ?? '').toLowerCase().startsWith('application/jose')) {
    const text = new TextDecoder().decode(c.get('rawBody')).trim();
    if (text === '') throw new ApiError('approval_invalid', 'The body is empty; send the compact JWS.');
    return text;
  }
  return (await jsonBody(c, ApprovalBody, { allow: { jws: ['jwt'] } })).jws;
}
