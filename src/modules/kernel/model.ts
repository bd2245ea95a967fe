/**
 * The task model of the orchestration kernel: enums, the stored rows, and the public JSON shape
 * every task route answers with.
 */
import { monotonicFactory } from 'ulid';
import type { TaskState, taskDispatches, taskGateDecisions, tasks } from './schema.js';

export type { TaskState } from './schema.js';

/** Every task state, in forward order, then BLOCKED. */
export const TASK_STATES = ['INBOX', 'TRIAGED', 'READY', 'DOING', 'REVIEW', 'APPROVAL', 'DONE', 'BLOCKED'] as const satisfies readonly TaskState[];
/** Task types. */
export const TASK_TYPES = ['FEATURE', 'BUG', 'SECURITY', 'OPS', 'DOCS', 'REVOPS', 'CLAIMS', 'PRODUCT'] as const;
/** Priorities, P0 most urgent. */
export const PRIORITIES = ['P0', 'P1', 'P2', 'P3'] as const;
/** Gates a task may have to pass before DONE. */
export const GATES = ['none', 'Security', 'RevOps', 'Claims', 'Product'] as const;
/** Where a gate stands. */
export const GATE_STATUSES = ['pending', 'approved', 'changes_requested', 'overridden'] as const;

/** One of {@link TASK_TYPES}. */
export type TaskType = (typeof TASK_TYPES)[number];
/** One of {@link PRIORITIES}. */
export type Priority = (typeof PRIORITIES)[number];
/** One of {@link GATES}. */
export type Gate = (typeof GATES)[number];
/** One of {@link GATE_STATUSES}. */
export type GateStatus = (typeof GATE_STATUSES)[number];

/** The group that approves each gate: Security by `security`, the others by `main`. */
export const GATE_APPROVER: Record<Exclude<Gate, 'none'>, string> = {
  Security: 'security',
  RevOps: 'main',
  Claims: 'main',
  Product: 'main',
};

/** The gate a new task gets when the request names none: the gate matching its type, else none. */
export const DEFAULT_GATE: Partial<Record<TaskType, Gate>> = {
  SECURITY: 'Security',
  REVOPS: 'RevOps',
  CLAIMS: 'Claims',
  PRODUCT: 'Product',
};

/** The type of the P0 follow-up an override of each gate creates. */
export const FOLLOW_UP_TYPE: Record<Exclude<Gate, 'none'>, TaskType> = {
  Security: 'SECURITY',
  RevOps: 'REVOPS',
  Claims: 'CLAIMS',
  Product: 'PRODUCT',
};

/** Task types that need `docs_updated` before DONE. */
export const DOCS_REQUIRED: ReadonlySet<TaskType> = new Set(['SECURITY', 'FEATURE']);

/** One definition-of-done item; `id` is its 1-based position, stable for the task's life. */
export interface DodItem {
  id: number;
  text: string;
  done: boolean;
}

/** A stored `tasks` row, as drizzle reads it. */
export type TaskRow = typeof tasks.$inferSelect;
/** A `tasks` row to insert (columns with defaults may be left out). */
export type TaskInsert = typeof tasks.$inferInsert;
/**
 * The columns a change of a task may set. `id` never changes; `version` and `updatedAt` are the
 * store's to set (the version read + 1, the change's time).
 */
export type TaskPatch = Partial<Omit<TaskInsert, 'id' | 'version' | 'updatedAt'>>;
/** A stored `task_gate_decisions` row. */
export type GateDecisionRow = typeof taskGateDecisions.$inferSelect;
/** A `task_gate_decisions` row to insert. */
export type GateDecisionInsert = typeof taskGateDecisions.$inferInsert;
/** A stored `task_dispatches` row. */
export type DispatchRow = typeof taskDispatches.$inferSelect;
/** A `task_dispatches` row to insert. */
export type DispatchInsert = typeof taskDispatches.$inferInsert;

/** A task as the API answers (snake_case; times RFC 3339 UTC). */
export interface TaskJson {
  id: string;
  title: string;
  description: string;
  type: TaskType;
  priority: Priority;
  state: TaskState;
  /** While BLOCKED: the state it returns to, and why it is blocked; otherwise null. */
  blocked_from: TaskState | null;
  blocked_reason: string | null;
  assigned_group: string | null;
  executor_group: string | null;
  gate: Gate;
  /** null when `gate` is none. */
  gate_status: GateStatus | null;
  definition_of_done: DodItem[];
  docs_updated: boolean;
  parent_task_id: string | null;
  version: number;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** Renders a row as {@link TaskJson}. */
export function taskJson(row: TaskRow): TaskJson {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    type: row.type as TaskType,
    priority: row.priority as Priority,
    state: row.state as TaskState,
    blocked_from: (row.blockedFrom as TaskState | null) ?? null,
    blocked_reason: row.blockedReason ?? null,
    assigned_group: row.assignedGroup ?? null,
    executor_group: row.executorGroup ?? null,
    gate: row.gate as Gate,
    gate_status: (row.gateStatus as GateStatus | null) ?? null,
    definition_of_done: dodItems(row),
    docs_updated: row.docsUpdated,
    parent_task_id: row.parentTaskId ?? null,
    version: row.version,
    created_by: row.createdBy,
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
}

/** The parsed definition-of-done checklist of a row. */
export function dodItems(row: Pick<TaskRow, 'definitionOfDone'>): DodItem[] {
  return JSON.parse(row.definitionOfDone) as DodItem[];
}

/** The entity tag of a task version: `"v<version>"` (RFC 9110 §8.8.3, strong). */
export function etagOf(version: number): string {
  return `"v${version}"`;
}

const nextUlid = monotonicFactory();

/**
 * A new ULID for `nowMs` (Unix ms): sortable by time, strictly increasing within this process even
 * when the (manual) clock stands still.
 */
export function newId(nowMs: number): string {
  return nextUlid(nowMs);
}
