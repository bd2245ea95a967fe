import { z } from 'zod';
import { COMMON_ERRORS, createRoute, IdempotencyKeyHeader, json, jsonRequest, problemResponses, ReplayedHeader, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { ApiError, type ErrorCode } from '../../../platform/http/problem.js';
import type { CallService } from '../service.js';
import { CallRequest } from '../shape.js';
import { CallResultSchema, HeldAnswerSchema, ReceiptSchema } from './schemas.js';

/** Every code a call can be refused or fail with, after authentication (README "Decision order"). */
const CALL_ERRORS: readonly ErrorCode[] = [
  'idempotency_key_missing',
  'malformed_json',
  'validation_failed',
  'secret_in_input',
  'unknown_action',
  'idempotency_key_reused',
  'request_in_flight',
  'disabled_by_operator',
  'backpressure',
  'no_capability',
  'capability_expired',
  'insufficient_level',
  'action_denied',
  'action_not_allowed',
  'resource_out_of_scope',
  'task_required',
  'task_not_found',
  'task_state',
  'task_not_assigned',
  'approval_pending',
  'provider_unavailable',
  'provider_circuit_open',
  'rate_limited',
  'quota_exceeded',
  'call_approval_expired',
  'provider_error',
  'provider_timeout',
  'unknown_outcome',
  'outcome_unrecorded',
  'audit_unavailable',
];

/**
 * `POST /v1/ext/calls`: body {@link CallRequest} `{action, params?, task_id?}`, signed by an agent
 * group with an `Idempotency-Key`. The call path parses the body itself (step 2 of the decision
 * order) and checks `params` against the action's own schema. 200 `{request_id, status:
 * "succeeded", action, result, receipt, duration_ms}`; every other answer after the signature is
 * problem+json with `code`, `request_id` and `receipt` (docs: decision order and codes). A replay
 * answers the stored status and body with `Idempotent-Replayed: true`.
 */
export function postCallOp(service: CallService): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/ext/calls',
      operationId: 'callAction',
      tags: ['calls'],
      summary: 'Call an action of a provider',
      security: [SIGNED],
      request: { headers: IdempotencyKeyHeader, body: jsonRequest(CallRequest) },
      responses: {
        200: json('The action ran and succeeded (or a replay of that answer).', CallResultSchema, ReplayedHeader),
        202: json(
          'Held for per-call approval (`approval_required`): nothing ran; two approvers sign the request digest, then it runs once (or a replay of that answer).',
          HeldAnswerSchema,
          ReplayedHeader.extend({ Location: z.string().optional().describe('The status URL, `/v1/ext/calls/{request_id}`.') }),
        ),
        ...problemResponses([...COMMON_ERRORS, ...CALL_ERRORS], {
          request_id: z.string().optional(),
          receipt: ReceiptSchema.optional().describe('Every step taken, on every answer after the signature.'),
        }),
      },
    }),
    handler: async (c) => {
      const p = c.get('principal');
      if (p.type !== 'group') throw new ApiError('forbidden', 'Only agent groups make external calls; sign the request as a group (RFC 9421).');
      const answer = await service.submit({
        group: p.group,
        keyid: p.keyid,
        requestId: c.get('idempotencyKey'),
        rawBody: c.get('rawBody'),
        bodySha256: c.get('bodySha256'),
        log: c.get('log'),
        instance: c.req.path,
      });
      return new Response(answer.body, { status: answer.status, headers: answer.headers });
    },
  };
}
