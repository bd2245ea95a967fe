/**
 * When a task move carries a dispatch, and what it writes. Shared by the dispatch loop
 * (`service/dispatch.ts`, actor `system`) and by hand moves into APPROVAL or DOING
 * (`transitionTask` in `service/transition.ts`, {@link handMovePlan}), so both decide with the same
 * predicate and write the same dispatch row, under the same key, with the same `dispatch.created`
 * audit row. Pure: the store writes what {@link dispatchWrite} returns.
 */
import type { ActivityInput } from '../../platform/audit/trail.js';
import { GATE_APPROVER, type DispatchInsert, type Gate, type TaskRow } from './model.js';
import type { TaskState } from './schema.js';

/** `execute`: work the task (into DOING); `approve`: decide its gate (REVIEW → APPROVAL). */
export type DispatchKind = 'execute' | 'approve';

/**
 * The dispatch a move of a task carries: its kind, the group it is for, and the state the move
 * takes the task to.
 */
export interface DispatchPlan {
  kind: DispatchKind;
  group: string;
  to: TaskState;
}

/** The unique key of the dispatch that moves `taskId` at `version` to `target`. */
export function dispatchKey(taskId: string, target: TaskState, version: number): string {
  return `${taskId}:${target}:${version}`;
}

/**
 * The `execute` dispatch due for a task as it is now: a READY task with an assigned group goes to
 * DOING and its group is told. Null otherwise.
 */
export function executePlan(row: TaskRow): DispatchPlan | null {
  if (row.state === 'READY' && row.assignedGroup !== null) return { kind: 'execute', group: row.assignedGroup, to: 'DOING' };
  return null;
}

/**
 * The `approve` dispatch due for a task as it is now (before its move): a REVIEW task with a gate
 * whose status is `pending` goes to APPROVAL and the gate's approver ({@link GATE_APPROVER}:
 * Security → security, RevOps/Claims/Product → main) is told. Null otherwise: no gate, or a gate
 * that is approved, overridden or `changes_requested` (the approver has nothing to decide until the
 * task is reworked and its gate is pending again).
 */
export function approvePlan(row: TaskRow): DispatchPlan | null {
  if (row.state === 'REVIEW' && row.gate !== 'none' && row.gateStatus === 'pending') {
    return { kind: 'approve', group: GATE_APPROVER[row.gate as Exclude<Gate, 'none'>], to: 'APPROVAL' };
  }
  return null;
}

/**
 * The dispatch a hand move carries (`transitionTask`), so the group with work to do learns of it
 * even when the loop did not make the move:
 * - into APPROVAL: {@link approvePlan} (main's move REVIEW → APPROVAL of a gated task);
 * - into DOING made by another group than the one assigned after the move (main's rework
 *   REVIEW → DOING, main unblocking BLOCKED → DOING, possibly reassigning): an `execute`
 *   dispatch for that group. The assigned group's own moves carry none: it made them.
 * Null otherwise.
 * @param assignedAfter the task's assigned group once the move is made (a move may reassign it).
 */
export function handMovePlan(row: TaskRow, to: TaskState, assignedAfter: string | null, actor: string): DispatchPlan | null {
  if (to === 'APPROVAL') return approvePlan(row);
  if (to === 'DOING' && assignedAfter !== null && actor !== assignedAfter) return { kind: 'execute', group: assignedAfter, to: 'DOING' };
  return null;
}

/** What the dispatch loop would do with a task now ({@link executePlan}, else {@link approvePlan}), or null. */
export function planFor(row: TaskRow): DispatchPlan | null {
  return executePlan(row) ?? approvePlan(row);
}

/**
 * The dispatch `plan` of a task, to write in the transaction that also makes the move (`row` is
 * the task as it was read before it, so the key names the version the dispatch was decided on):
 * the `task_dispatches` row (`status: pending`) under `dispatch_key` =
 * {@link dispatchKey}`(row.id, plan.to, row.version)`, and the `dispatch.created` audit row
 * (`{dispatch_id, dispatch_key, kind, group, target_state}`, subject the task id) as `actor`
 * (`system` for the loop, the moving group for a hand move). A second write of the same key is
 * refused by the unique index, which rolls the whole move back.
 * @param id the dispatch id (a ULID), also named in the move's `task.transition` row.
 * @param nowMs Unix ms.
 */
export function dispatchWrite(row: TaskRow, plan: DispatchPlan, actor: string, nowMs: number, id: string): { row: DispatchInsert; activity: ActivityInput } {
  const key = dispatchKey(row.id, plan.to, row.version);
  return {
    row: { id, dispatchKey: key, taskId: row.id, kind: plan.kind, group: plan.group, targetState: plan.to, taskVersion: row.version, createdAt: nowMs },
    activity: { actor, kind: 'dispatch.created', subject: row.id, detail: { dispatch_id: id, dispatch_key: key, kind: plan.kind, group: plan.group, target_state: plan.to } },
  };
}
