/** The request headers and parameters and the response shapes of the kernel's routes, as OpenAPI components. */
import { z } from 'zod';
import { RunSchema } from '../../runner/routes/schemas.js';
import { IdempotencyKeyHeader } from '../../../platform/http/contract.js';
import { CallSummarySchema } from '../../calls/routes/schemas.js';
import { GATE_STATUSES, GATES, PRIORITIES, TASK_STATES, TASK_TYPES } from '../model.js';

/** The `{id}` of the task routes: a ULID (anything else is 404 `not_found` before any look-up). */
export const TaskIdParams = z.object({ id: z.string().describe('The task id, a ULID.') });

/** The `{id}` of a dispatch. */
export const DispatchIdParams = z.object({ id: z.string().describe('The dispatch id, a ULID.') });

/** The headers of a task mutation: its `Idempotency-Key` and `If-Match` with the ETag read. */
export const TaskMutationHeaders = IdempotencyKeyHeader.extend({
  'if-match': z.string().describe('The task\'s ETag as read, `"v<version>"` (RFC 9110 §13.1.1); missing: 428 `precondition_required`.'),
});

/** The `ETag` of the task answered, `"v<version>"`. */
export const ETagHeader = z.object({ ETag: z.string().describe('`"v<version>"` of the task answered.') });

/** A task as the API answers it (`TaskJson` in model.ts). */
export const TaskSchema = z
  .strictObject({
    id: z.string().describe('A ULID.'),
    title: z.string(),
    description: z.string(),
    type: z.enum(TASK_TYPES),
    priority: z.enum(PRIORITIES),
    state: z.enum(TASK_STATES),
    blocked_from: z.enum(TASK_STATES).nullable().describe('While BLOCKED: the state it returns to.'),
    blocked_reason: z.string().nullable(),
    assigned_group: z.string().nullable(),
    executor_group: z.string().nullable(),
    gate: z.enum(GATES),
    gate_status: z.enum(GATE_STATUSES).nullable().describe('null when `gate` is none.'),
    definition_of_done: z.array(z.strictObject({ id: z.number().int().min(1), text: z.string(), done: z.boolean() })),
    docs_updated: z.boolean(),
    parent_task_id: z.string().nullable(),
    version: z.number().int().min(1),
    created_by: z.string(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Task' });

/** A dispatch as the API answers it (`DispatchJson` in dispatch.ts). */
export const DispatchSchema = z
  .strictObject({
    id: z.string(),
    dispatch_key: z.string(),
    task_id: z.string(),
    kind: z.enum(['execute', 'approve']),
    group: z.string(),
    target_state: z.enum(TASK_STATES),
    task_version: z.number().int(),
    status: z.enum(['pending', 'acked']),
    created_at: z.iso.datetime(),
    acked_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Dispatch' });

/** A gate decision (`GateDecisionJson` in tasks.ts). */
export const GateDecisionSchema = z
  .strictObject({
    id: z.string(),
    gate: z.string(),
    decision: z.enum(GATE_STATUSES),
    actor: z.string(),
    reason: z.string().nullable(),
    risk_acceptance: z.string().nullable(),
    follow_up_task_id: z.string().nullable(),
    created_at: z.iso.datetime(),
  })
  .meta({ id: 'GateDecision' });

/** What a dispatched agent receives as its context: the task, its audit rows, gate decisions and external calls. */
export const TaskContextSchema = z
  .strictObject({
    task: TaskSchema,
    activity: z.array(z.strictObject({ seq: z.number().int(), ts: z.iso.datetime(), actor: z.string(), kind: z.string(), detail: z.record(z.string(), z.unknown()) })),
    gate_decisions: z.array(GateDecisionSchema),
    external_calls: z.array(CallSummarySchema),
    runs: z.array(RunSchema).describe('The runner processes started for its dispatches, oldest first (empty when its groups have no runner).'),
  })
  .meta({ id: 'TaskContext' });
