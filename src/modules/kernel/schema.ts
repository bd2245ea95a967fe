import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex, type AnySQLiteColumn } from 'drizzle-orm/sqlite-core';

/**
 * A task's lifecycle state: forward INBOX → TRIAGED → READY → DOING → REVIEW → APPROVAL → DONE,
 * and BLOCKED from any state but DONE (the moves are the table in `machine.ts`).
 */
export type TaskState = 'INBOX' | 'TRIAGED' | 'READY' | 'DOING' | 'REVIEW' | 'APPROVAL' | 'DONE' | 'BLOCKED';

/**
 * `tasks`: the orchestration kernel's work items. `state` moves only through the table in
 * `src/modules/kernel/machine.ts`; every update bumps `version` (optimistic locking, `ETag: "v<version>"`).
 * Times are Unix ms.
 */
export const tasks = sqliteTable(
  'tasks',
  {
    /** ULID: sortable by creation time. */
    id: text('id').primaryKey(),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    /** FEATURE | BUG | SECURITY | OPS | DOCS | REVOPS | CLAIMS | PRODUCT */
    type: text('type').notNull(),
    /** P0 | P1 | P2 | P3 */
    priority: text('priority').notNull(),
    /** INBOX | TRIAGED | READY | DOING | REVIEW | APPROVAL | DONE | BLOCKED */
    state: text('state').$type<TaskState>().notNull(),
    /** While BLOCKED: the state it came from (and returns to). */
    blockedFrom: text('blocked_from').$type<TaskState>(),
    blockedReason: text('blocked_reason'),
    assignedGroup: text('assigned_group'),
    /** The group that moved it DOING → REVIEW. */
    executorGroup: text('executor_group'),
    /** none | Security | RevOps | Claims | Product */
    gate: text('gate').notNull().default('none'),
    /** pending | approved | changes_requested | overridden; null when gate is none. */
    gateStatus: text('gate_status'),
    /** JSON array of `{id: number, text: string, done: boolean}`. */
    definitionOfDone: text('definition_of_done').notNull().default('[]'),
    docsUpdated: integer('docs_updated', { mode: 'boolean' }).notNull().default(false),
    parentTaskId: text('parent_task_id').references((): AnySQLiteColumn => tasks.id),
    version: integer('version').notNull().default(1),
    /** The actor that created it (a group, or `system` for override follow-ups). */
    createdBy: text('created_by').notNull(),
    /** The creating request's Idempotency-Key and body hash (replays return the same task). */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('tasks_state_idx').on(t.state, t.id),
    index('tasks_assigned_idx').on(t.assignedGroup, t.id),
    index('tasks_parent_idx').on(t.parentTaskId),
    uniqueIndex('tasks_idempotency_idx').on(t.createdBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);

/**
 * `task_dispatches`: work handed to a group's runner by the dispatch loop. `dispatch_key` =
 * `<task id>:<target state>:<task version>` is unique, so a transition is dispatched at most once
 * however many loops run or restart.
 */
export const taskDispatches = sqliteTable(
  'task_dispatches',
  {
    id: text('id').primaryKey(),
    dispatchKey: text('dispatch_key').notNull().unique(),
    taskId: text('task_id')
      .notNull()
      .references(() => tasks.id),
    /** execute | approve */
    kind: text('kind').notNull(),
    group: text('group').notNull(),
    targetState: text('target_state').notNull(),
    /** The task version the dispatch was decided on (before its transition). */
    taskVersion: integer('task_version').notNull(),
    /** pending | acked */
    status: text('status').notNull().default('pending'),
    createdAt: integer('created_at').notNull(),
    ackedAt: integer('acked_at'),
  },
  (t) => [index('task_dispatches_group_status_idx').on(t.group, t.status, t.id), index('task_dispatches_task_idx').on(t.taskId)],
);

/** `task_gate_decisions`: every approve / request-changes / override of a task's gate, in order. */
export const taskGateDecisions = sqliteTable(
  'task_gate_decisions',
  {
    id: text('id').primaryKey(),
    taskId: text('task_id')
      .notNull()
      .references(() => tasks.id),
    gate: text('gate').notNull(),
    /** approved | changes_requested | overridden */
    decision: text('decision').notNull(),
    /** The deciding group. */
    actor: text('actor').notNull(),
    reason: text('reason'),
    riskAcceptance: text('risk_acceptance'),
    /** The P0 follow-up an override created. */
    followUpTaskId: text('follow_up_task_id'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('task_gate_decisions_task_idx').on(t.taskId, t.id)],
);
