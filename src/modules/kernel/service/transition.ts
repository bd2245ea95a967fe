/**
 * Moving a task along the state machine (`POST /v1/tasks/{id}/transition`), and the plan of a
 * move that gate decisions and the dispatch loop reuse.
 */
import type { ActivityInput } from '../../../platform/audit/trail.js';
import { ApiError } from '../../../platform/http/problem.js';
import { dispatchWrite, handMovePlan } from '../dispatch-plan.js';
import { checkTransition, rolesOf } from '../machine.js';
import { DOCS_REQUIRED, dodItems, newId, type Gate, type GateStatus, type TaskPatch, type TaskRow, type TaskType } from '../model.js';
import { checkIfMatch } from '../precondition.js';
import type { TaskState } from '../schema.js';
import type { TaskWrite } from '../store.js';
import { checkAssignable, fieldError, found, refusing, requireKnownGroup, type KernelDeps } from './common.js';

/** One unmet DONE requirement. */
export type DoneRequirement =
  | { requirement: 'gate'; gate: Gate; gate_status: GateStatus | null }
  | { requirement: 'definition_of_done'; item_id: number; text: string }
  | { requirement: 'docs_updated'; type: TaskType };

/**
 * What stands between a task and DONE: the gate approved or overridden (or no gate), every
 * definition-of-done item done, and `docs_updated` for SECURITY and FEATURE tasks.
 * Empty when nothing is missing.
 */
export function missingForDone(row: TaskRow): DoneRequirement[] {
  const missing: DoneRequirement[] = [];
  if (row.gate !== 'none' && row.gateStatus !== 'approved' && row.gateStatus !== 'overridden') {
    missing.push({ requirement: 'gate', gate: row.gate as Gate, gate_status: row.gateStatus as GateStatus | null });
  }
  for (const item of dodItems(row)) if (!item.done) missing.push({ requirement: 'definition_of_done', item_id: item.id, text: item.text });
  if (DOCS_REQUIRED.has(row.type as TaskType) && !row.docsUpdated) missing.push({ requirement: 'docs_updated', type: row.type as TaskType });
  return missing;
}

function describeMissing(m: DoneRequirement): string {
  switch (m.requirement) {
    case 'gate':
      return `the ${m.gate} gate is ${m.gate_status ?? 'pending'} (needs approved or overridden)`;
    case 'definition_of_done':
      return `definition-of-done item ${m.item_id} ("${m.text}") is not done`;
    case 'docs_updated':
      return `docs_updated is false (required for ${m.type} tasks)`;
  }
}

/**
 * A transition request. `reason` is required for BLOCKED; `assignedGroup` only from main, and never
 * the approver of the task's gate (`checkAssignable`).
 */
export interface TransitionInput {
  to: TaskState;
  reason?: string;
  assignedGroup?: string;
}

/** What a move writes: the task's new columns and its `task.transition` audit row. */
export interface MovePlan {
  patch: TaskPatch;
  activity: ActivityInput;
}

/**
 * Plans the move of `row` to `input.to` by `actor` at `nowMs` (Unix ms): checks the table and the
 * actor's role, the transition's own requirements, and returns the columns to set and the
 * `task.transition` audit row (`{from, to, version, reason?, assigned_group?, executor_group?}`,
 * `version` being the one the store's versioned write gives it). Also used by the dispatch loop
 * (actor `system`) and by gate decisions (`extra` carries their gate change). Any move may carry
 * `assignedGroup` (main only), which must not be the approver of the task's gate.
 * @throws ApiError 409 `illegal_transition`, 403 `forbidden`, 422 `validation_failed` (READY with no
 *   assigned group, BLOCKED with no reason, unknown group), 403 `separation_of_powers` (assigning a
 *   gated task to its gate's approver, with `gate`, `approver_group`, `assigned_group`),
 *   409 `done_requirements_unmet` (with `missing`).
 */
export function planMove(
  deps: Pick<KernelDeps, 'groups'>,
  row: TaskRow,
  actor: string,
  input: TransitionInput,
  nowMs: number,
  extra: { patch?: TaskPatch; detail?: Record<string, unknown> } = {},
): MovePlan {
  const from = row.state as TaskState;
  const { to } = input;
  checkTransition(row, to, actor);
  const patch: TaskPatch = { state: to, ...extra.patch };
  if (input.assignedGroup !== undefined) {
    if (!rolesOf(actor, row).has('main')) throw new ApiError('forbidden', 'Only main assigns tasks.');
    requireKnownGroup(deps, input.assignedGroup, 'assigned_group');
    checkAssignable(row.id, row.gate as Gate, input.assignedGroup);
    patch.assignedGroup = input.assignedGroup;
  }
  const assigned = patch.assignedGroup ?? row.assignedGroup;
  if (to === 'READY' && !assigned) throw fieldError('assigned_group', 'a task needs an assigned group to move to READY');
  if (to === 'BLOCKED') {
    if (!input.reason) throw fieldError('reason', 'blocking a task needs a reason');
    patch.blockedFrom = from;
    patch.blockedReason = input.reason;
  }
  if (from === 'BLOCKED') {
    patch.blockedFrom = null;
    patch.blockedReason = null;
  }
  const gated = row.gate !== 'none' && row.gateStatus !== 'overridden';
  if (from === 'DOING' && to === 'REVIEW') {
    patch.executorGroup = actor;
    if (gated) patch.gateStatus = 'pending';
  }
  if (from === 'APPROVAL' && to === 'REVIEW' && gated && patch.gateStatus === undefined && row.gateStatus === 'pending') {
    patch.gateStatus = 'changes_requested';
  }
  if (to === 'DONE') {
    const missing = missingForDone(row);
    if (missing.length > 0) {
      throw new ApiError('done_requirements_unmet', `Task ${row.id} cannot be DONE yet: ${missing.map(describeMissing).join('; ')}.`, { missing });
    }
  }
  const activity: ActivityInput = {
    actor,
    kind: 'task.transition',
    subject: row.id,
    detail: {
      from,
      to,
      version: row.version + 1,
      ...(input.reason !== undefined ? { reason: input.reason } : {}),
      ...(patch.assignedGroup !== undefined ? { assigned_group: patch.assignedGroup } : {}),
      ...(patch.executorGroup !== undefined ? { executor_group: patch.executorGroup } : {}),
      ...extra.detail,
    },
  };
  return { patch, activity };
}

/**
 * `POST /v1/tasks/{id}/transition`: moves a task as `actor`, if `ifMatch` names its current
 * version. See {@link planMove} for the rules and errors; also 404 `not_found`,
 * 428 `precondition_required`, 412 `precondition_failed`, 503 `audit_unavailable`.
 *
 * A hand move tells the group that now has work, as the dispatch loop would have
 * ({@link handMovePlan}): REVIEW → APPROVAL (main) of a task whose gate is pending records the
 * `approve` dispatch for the gate's approver; a move into DOING by another group than the assigned
 * one (main's rework or unblock) records an `execute` dispatch for the assigned group. Either is
 * stored in the same transaction under `dispatch_key` = `<id>:<target>:<version before the move>`
 * with the `dispatch.created` audit row as `actor` ({@link dispatchWrite}), and the
 * `task.transition` row carries its `dispatch_id`. The loop dispatches only READY and REVIEW
 * tasks, so it never adds a second one.
 * A failed move (412, 409, 403, 422, …) rolls back and records none.
 * @returns the moved task (the dispatch is read through `GET /v1/dispatches`).
 */
export async function transitionTask(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: TransitionInput): Promise<TaskRow> {
  return refusing(deps, actor, id, { action: 'transition', to: input.to }, async () => {
    const written = await deps.tasks.change(id, (current): TaskWrite => {
      const row = found(current, id);
      checkIfMatch(ifMatch, row.version);
      const plan = handMovePlan(row, input.to, input.assignedGroup ?? row.assignedGroup, actor);
      const nowMs = deps.clock.now();
      if (!plan) {
        const move = planMove(deps, row, actor, input, nowMs);
        return { nowMs, patch: move.patch, activities: [move.activity] };
      }
      const dispatchId = newId(nowMs);
      const move = planMove(deps, row, actor, input, nowMs, { detail: { dispatch_id: dispatchId } });
      const dispatch = dispatchWrite(row, plan, actor, nowMs, dispatchId);
      return { nowMs, patch: move.patch, dispatch: dispatch.row, activities: [move.activity, dispatch.activity] };
    });
    return written.task;
  });
}
