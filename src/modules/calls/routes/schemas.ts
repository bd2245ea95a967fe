/** The response shapes of the call routes, as OpenAPI components. */
import { z } from 'zod';
import { CALL_STATUSES } from '../store.js';

/** One step of a decision receipt (`ReceiptStep` in decision/receipt.ts). */
const ReceiptStepSchema = z.strictObject({
  step: z.string().describe('signature, request, idempotency, switch, backpressure, grant, expiry, level, deny_list, allow_list, resource, task, approval, provider, call_approval, circuit, limits, claim, execute'),
  result: z.enum(['pass', 'fail', 'skip']),
  note: z.string().optional(),
});

/** A decision receipt: every step the broker took on a call, in order (`Receipt` in decision/receipt.ts). */
export const ReceiptSchema = z
  .strictObject({
    request_id: z.string(),
    group: z.string(),
    action: z.string().nullable(),
    decided_at: z.iso.datetime(),
    decision: z.enum(['allowed', 'denied', 'rejected', 'held']),
    code: z.string().nullable(),
    grant_id: z.string().nullable(),
    task_id: z.string().nullable(),
    steps: z.array(ReceiptStepSchema),
  })
  .meta({ id: 'Receipt' });

const summaryShape = {
  request_id: z.string().describe('The Idempotency-Key the call was made under.'),
  group: z.string(),
  action: z.string(),
  level: z.number().int(),
  resource: z.string(),
  summary: z.string(),
  task_id: z.string().nullable(),
  grant_id: z.string(),
  status: z.enum(CALL_STATUSES),
  http_status: z.number().int().nullable().describe('The status answered; null while running.'),
  attempts: z.number().int(),
  created_at: z.iso.datetime(),
  finished_at: z.iso.datetime().nullable(),
  duration_ms: z.number().nullable(),
};

/** The per-call approval of a held call (`HeldView` in approval/service.ts). */
export const HeldCallSchema = z
  .strictObject({
    request: z
      .strictObject({
        method: z.literal('POST'),
        path: z.literal('/v1/ext/calls'),
        group: z.string(),
        request_id: z.string(),
        action: z.string(),
        params: z.unknown(),
        resources: z.array(z.string()),
        task_id: z.string().nullable(),
      })
      .describe('The exact request approvers sign: the sha256 of its RFC 8785 canonical JSON is request_digest.'),
    request_digest: z.string(),
    expires_at: z.iso.datetime().describe('The held call expires unexecuted at this instant.'),
    approvals_required: z.number().int(),
    approvals: z.array(z.strictObject({ approver_id: z.string(), approver_group: z.string(), at: z.iso.datetime() })),
  })
  .meta({ id: 'HeldCall' });

/** A call without its receipt and answer, as lists show it (`callView(row, false)` in views.ts). */
export const CallSummarySchema = z.strictObject(summaryShape).meta({ id: 'CallSummary' });

/**
 * A call with its final receipt and the answer it gave (`callView(row)` in views.ts): `response`
 * is the stored body (the success body or the problem), null while running.
 */
export const CallSchema = z
  .strictObject({
    ...summaryShape,
    receipt: ReceiptSchema,
    response: z.record(z.string(), z.unknown()).nullable(),
    approval: HeldCallSchema.optional().describe('Present on a call held for per-call approval.'),
  })
  .meta({ id: 'Call' });

/** The answer to a call that ran and succeeded. */
export const CallResultSchema = z
  .strictObject({
    request_id: z.string(),
    status: z.literal('succeeded'),
    action: z.string(),
    result: z.unknown().describe("The action's result, redacted."),
    receipt: ReceiptSchema,
    duration_ms: z.number(),
  })
  .meta({ id: 'CallResult' });

/** One action as one group sees it (`Capability` in capabilities.ts). */
export const CapabilitySchema = z
  .strictObject({
    action: z.string(),
    provider: z.string(),
    level: z.number().int(),
    description: z.string(),
    idempotent: z.boolean(),
    requires_task: z.boolean().describe('L2+ calls need a task_id of a task in DOING or APPROVAL assigned to the group.'),
    allowed: z.boolean(),
    code: z.string().nullable().describe('Why not, when not allowed: a decision code or provider_unavailable.'),
    detail: z.string().nullable(),
    grant_id: z.string().nullable(),
    resources: z.array(z.string()).nullable(),
    expires_at: z.iso.datetime().nullable(),
    params_schema: z
      .record(z.string(), z.unknown())
      .describe("The action's params as JSON Schema (draft 2020-12, input form: members with a default are optional), from its zod schema."),
  })
  .meta({ id: 'Capability' });

/** What the calling group may call now, and its pending calls. */
export const CapabilitiesSchema = z
  .strictObject({ group: z.string(), pending: z.number().int(), max_pending: z.number().int(), actions: z.array(CapabilitySchema) })
  .meta({ id: 'Capabilities' });

/** The answer to a call held for per-call approval (202 `approval_required`; `holdCall` in approval/hold.ts). */
export const HeldAnswerSchema = z
  .strictObject({
    request_id: z.string(),
    status: z.literal('awaiting_approval'),
    code: z.literal('approval_required'),
    detail: z.string(),
    action: z.string(),
    status_url: z.string().describe('`GET` it for the call: `awaiting_approval`, then its outcome, or `expired`.'),
    approval_url: z.string().describe('Where approvers\' signed approvals are submitted (operators, `main`).'),
    request_digest: z.string().describe('What approvers sign: sha256 of the canonical request.'),
    approvals_required: z.number().int(),
    expires_at: z.iso.datetime().describe('The call expires unexecuted at this instant.'),
    receipt: ReceiptSchema,
  })
  .meta({ id: 'HeldCallAnswer' });
