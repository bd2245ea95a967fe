/**
 * The task tools of the seed's governance design (`gov_*`), listed by role (see `roles.ts`):
 * - every group: `gov_list_pipeline` (`GET /v1/tasks`) and `gov_task_context` (also `task_context`);
 * - the coordinator (`main`): `gov_create_task`, `gov_assign` (triage and assignment);
 * - the coordinator and the working groups: `gov_transition` (also `transition_task`);
 * - the working groups: `gov_update_dod` (also `update_dod`).
 * Each mutation carries a fresh Idempotency-Key (creation: the agent's `request_id` when given);
 * the versioned ones send If-Match ({@link mutateTask}). Every business rule (who may move what,
 * gates, DoD) stays the kernel's, and its refusals come back as error results.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GroupName } from '../../modules/identity/groups.js';
import { DodItemUpdates, ReasonText } from '../../modules/kernel/http.js';
import { TASK_STATES } from '../../modules/kernel/model.js';
import { CreateTaskBody } from '../../modules/kernel/routes/create-task.js';
import { ListTasksQuery } from '../../modules/kernel/routes/list-tasks.js';
import { TaskContextSchema, TaskSchema } from '../../modules/kernel/routes/schemas.js';
import { pageOf } from '../../platform/http/pagination.js';
import { READ, WRITE, zodTool, type ToolFamily } from '../registry.js';
import { RequestId } from './ext.js';
import { mutateTask, TaskIdArg, Version } from './task-write.js';

/** The task tools. */
export const taskTools: ToolFamily = (ctx) => [
  zodTool({
    name: 'gov_list_pipeline',
    description: 'The pipeline: tasks oldest first, filtered by state, assigned group or type; page with cursor (the previous page’s next_cursor).',
    input: ListTasksQuery.omit({ starting_after: true }),
    output: pageOf(TaskSchema),
    annotations: READ,
    run: (query) => ctx.answer(ctx.client.get('/v1/tasks', { query })),
  }),
  zodTool({
    name: 'gov_task_context',
    aliases: ['task_context'],
    description: 'A task with its activity log, gate decisions and external calls: the working context of a dispatched agent.',
    input: z.strictObject({ task_id: TaskIdArg }),
    output: TaskContextSchema,
    annotations: READ,
    run: ({ task_id }) => ctx.answer(ctx.client.get(`/v1/tasks/${encodeURIComponent(task_id)}/context`)),
  }),
  zodTool({
    name: 'gov_create_task',
    description:
      'Create a task in INBOX (main only). Its gate follows its type unless given (SECURITY → Security, REVOPS → RevOps, CLAIMS → Claims, PRODUCT → Product). Reuse request_id to retry safely: the same task is answered again.',
    input: CreateTaskBody.extend({ request_id: RequestId.optional().describe('Idempotency key; a new one is generated when absent') }),
    output: TaskSchema,
    annotations: WRITE,
    listedFor: (r) => r.coordinator,
    run: ({ request_id, ...body }) => ctx.answer(ctx.client.post('/v1/tasks', body, { idempotencyKey: request_id ?? randomUUID() })),
  }),
  zodTool({
    name: 'gov_assign',
    description:
      'Assign a task to a group (main only): by default a TRIAGED task moves to READY with the group, and the dispatcher then tells that group; with `to`, the group is set on another move (e.g. REVIEW → DOING for rework). Never the approver of the task’s gate (separation_of_powers). Triage (INBOX → TRIAGED) is gov_transition.',
    input: z.strictObject({
      task_id: TaskIdArg,
      group: GroupName.describe('The group that will work the task'),
      to: z.enum(TASK_STATES).default('READY').describe('The state the task moves to (default READY)'),
      version: Version,
    }),
    output: TaskSchema,
    annotations: WRITE,
    listedFor: (r) => r.coordinator,
    run: ({ task_id, group, to, version }) => ctx.answer(mutateTask(ctx.client, 'POST', task_id, 'transition', { to, assigned_group: group }, version)),
  }),
  zodTool({
    name: 'gov_transition',
    aliases: ['transition_task'],
    description:
      'Move a task along the state machine, e.g. DOING → REVIEW when your work is done, or to BLOCKED (reason required) and back; main also triages (INBOX → TRIAGED) and closes (APPROVAL → DONE). A refused move returns the kernel’s code (illegal_transition with `allowed`, forbidden, precondition_failed when the task changed since `version`).',
    input: z.strictObject({ task_id: TaskIdArg, to: z.enum(TASK_STATES).describe('The target state'), reason: ReasonText.optional().describe('Why (required for BLOCKED)'), version: Version }),
    output: TaskSchema,
    annotations: WRITE,
    listedFor: (r) => r.coordinator || r.worker,
    run: ({ task_id, to, reason, version }) => ctx.answer(mutateTask(ctx.client, 'POST', task_id, 'transition', { to, reason }, version)),
  }),
  zodTool({
    name: 'gov_update_dod',
    aliases: ['update_dod'],
    description: 'Tick (or untick) definition-of-done items by id, and/or set docs_updated, on a task assigned to or executed by this group.',
    input: z
      .strictObject({ task_id: TaskIdArg, items: DodItemUpdates.optional().describe('Items to set: [{id, done}]'), docs_updated: z.boolean().optional().describe('Whether the docs were updated'), version: Version })
      .refine((a) => a.items !== undefined || a.docs_updated !== undefined, 'send items, docs_updated, or both'),
    output: TaskSchema,
    annotations: WRITE,
    listedFor: (r) => r.worker,
    run: ({ task_id, items, docs_updated, version }) => ctx.answer(mutateTask(ctx.client, 'PATCH', task_id, 'dod', { items, docs_updated }, version)),
  }),
];
