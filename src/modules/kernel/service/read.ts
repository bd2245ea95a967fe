/**
 * Reading tasks: one task, a page of tasks, and a task's context (its audit rows, gate decisions
 * and dispatches).
 */
import type { Activity } from '../../../platform/audit/trail.js';
import type { DispatchRow, GateStatus, TaskRow } from '../model.js';
import type { RowPage, TaskFilter } from '../store.js';
import { found, type KernelDeps } from './common.js';

export type { TaskFilter } from '../store.js';

type ReadDeps = Pick<KernelDeps, 'tasks'>;

/** One task, or null. */
export function findTask(deps: ReadDeps, id: string): Promise<TaskRow | null> {
  return deps.tasks.find(id);
}

/**
 * One task.
 * @throws ApiError 404 `not_found`.
 */
export async function requireTask(deps: ReadDeps, id: string): Promise<TaskRow> {
  return found(await deps.tasks.find(id), id);
}

/** A page of tasks in id (creation) order; `hasMore` when another page follows. */
export function listTasks(deps: ReadDeps, filter: TaskFilter): Promise<RowPage<TaskRow>> {
  return deps.tasks.list(filter);
}

/** One gate decision as the API answers (times RFC 3339 UTC). */
export interface GateDecisionJson {
  id: string;
  gate: string;
  decision: GateStatus;
  actor: string;
  reason: string | null;
  risk_acceptance: string | null;
  follow_up_task_id: string | null;
  created_at: string;
}

/** A task's gate decisions, oldest first. */
export async function gateDecisionsFor(deps: ReadDeps, taskId: string): Promise<GateDecisionJson[]> {
  return (await deps.tasks.gateDecisions(taskId)).map((d) => ({
    id: d.id,
    gate: d.gate,
    decision: d.decision as GateStatus,
    actor: d.actor,
    reason: d.reason,
    risk_acceptance: d.riskAcceptance,
    follow_up_task_id: d.followUpTaskId,
    created_at: new Date(d.createdAt).toISOString(),
  }));
}

/** The dispatches made for a task, oldest first. */
export function dispatchesFor(deps: ReadDeps, taskId: string): Promise<DispatchRow[]> {
  return deps.tasks.dispatchesOf(taskId);
}

/** What {@link taskContext} answers. */
export interface TaskContext {
  task: TaskRow;
  /** The task's audit rows, oldest first, at most 1000. */
  activity: Activity[];
  gateDecisions: GateDecisionJson[];
}

/**
 * What a dispatched agent receives as its prompt context: the task row, its audit rows (oldest
 * first, at most 1000), and its gate decisions.
 * @throws ApiError 404 `not_found`.
 */
export async function taskContext(deps: ReadDeps, id: string): Promise<TaskContext> {
  const task = await requireTask(deps, id);
  return { task, activity: await deps.tasks.activity(id), gateDecisions: await gateDecisionsFor(deps, id) };
}
