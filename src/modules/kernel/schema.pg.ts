import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, pgTable, text, uniqueIndex, type AnyPgColumn } from 'drizzle-orm/pg-core';
import type { TaskState } from './coupling.js';

/**
 * PostgreSQL mirror of `tasks` (`schema.ts`): the orchestration kernel's work items. `version`
 * is the optimistic lock (`ETag: "v<version>"`): an update names the version it read in its WHERE
 * clause, so a concurrent update on another replica makes it match no row. Times are Unix ms.
 */
export const tasks = pgTable(
  'tasks',
  {
    id: text('id').primaryKey(),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    type: text('type').notNull(),
    priority: text('priority').notNull(),
    state: text('state').$type<TaskState>().notNull(),
    blockedFrom: text('blocked_from').$type<TaskState>(),
    blockedReason: text('blocked_reason'),
    assignedGroup: text('assigned_group'),
    executorGroup: text('executor_group'),
    gate: text('gate').notNull().default('none'),
    gateStatus: text('gate_status'),
    /** JSON array text of `{id, text, done}`. */
    definitionOfDone: text('definition_of_done').notNull().default('[]'),
    docsUpdated: boolean('docs_updated').notNull().default(false),
    parentTaskId: text('parent_task_id').references((): AnyPgColumn => tasks.id),
    version: integer('version').notNull().default(1),
    createdBy: text('created_by').notNull(),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('tasks_state_idx').on(t.state, t.id),
    index('tasks_assigned_idx').on(t.assignedGroup, t.id),
    index('tasks_parent_idx').on(t.parentTaskId),
    uniqueIndex('tasks_idempotency_idx').on(t.createdBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);

/**
 * PostgreSQL mirror of `task_dispatches`: `dispatch_key` (`<task id>:<target state>:<task version>`)
 * is unique, so a transition is dispatched at most once however many replicas run the loop.
 */
export const taskDispatches = pgTable(
  'task_dispatches',
  {
    id: text('id').primaryKey(),
    dispatchKey: text('dispatch_key').notNull().unique(),
    taskId: text('task_id')
      .notNull()
      .references(() => tasks.id),
    kind: text('kind').notNull(),
    group: text('group').notNull(),
    targetState: text('target_state').notNull(),
    taskVersion: integer('task_version').notNull(),
    status: text('status').notNull().default('pending'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    ackedAt: bigint('acked_at', { mode: 'number' }),
  },
  (t) => [index('task_dispatches_group_status_idx').on(t.group, t.status, t.id), index('task_dispatches_task_idx').on(t.taskId)],
);

/** PostgreSQL mirror of `task_gate_decisions`: every approve / request-changes / override of a gate. */
export const taskGateDecisions = pgTable(
  'task_gate_decisions',
  {
    id: text('id').primaryKey(),
    taskId: text('task_id')
      .notNull()
      .references(() => tasks.id),
    gate: text('gate').notNull(),
    decision: text('decision').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason'),
    riskAcceptance: text('risk_acceptance'),
    followUpTaskId: text('follow_up_task_id'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('task_gate_decisions_task_idx').on(t.taskId, t.id)],
);
