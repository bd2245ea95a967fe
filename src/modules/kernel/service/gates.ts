/**
 * A task's gate: the approver's decision (`POST /v1/tasks/{id}/gate`) and main's override with
 * its P0 follow-up (`POST /v1/tasks/{id}/override`).
 */
import { ApiError } from '../../../platform/http/problem.js';
import { rolesOf } from '../machine.js';
import { FOLLOW_UP_TYPE, newId, type Gate, type GateDecisionInsert, type GateStatus, type TaskRow } from '../model.js';
import { checkIfMatch } from '../precondition.js';
import type { TaskWrite } from '../store.js';
import { found, refusing, type KernelDeps } from './common.js';
import { createdActivity, newTaskRow } from './create.js';
import { planMove } from './transition.js';

/**
 * The separation-of-powers rule: the group that executed a task never approves (or overrides) its
 * gate, even when it is the gate's approver.
 * @throws ApiError 403 `separation_of_powers` (with `executor_group`).
 */
export function checkNotExecutor(row: TaskRow, actor: string, what: string): void {
  if (row.executorGroup !== null && row.executorGroup === actor) {
    throw new ApiError('separation_of_powers', `${actor} executed task ${row.id}, so it may not ${what} its ${row.gate} gate; another group must.`, {
      executor_group: row.executorGroup,
    });
  }
}

function decisionRow(
  row: TaskRow,
  actor: string,
  decision: GateStatus,
  nowMs: number,
  extra: { reason?: string; riskAcceptance?: string; followUpTaskId?: string } = {},
): GateDecisionInsert {
  return {
    id: newId(nowMs),
    taskId: row.id,
    gate: row.gate,
    decision,
    actor,
    reason: extra.reason ?? null,
    riskAcceptance: extra.riskAcceptance ?? null,
    followUpTaskId: extra.followUpTaskId ?? null,
    createdAt: nowMs,
  };
}

/** A gate decision: approve, or request changes (which sends the task APPROVAL → REVIEW). */
export interface GateDecisionInput {
  decision: 'approve' | 'request_changes';
  reason?: string;
}

/**
 * `POST /v1/tasks/{id}/gate`: the gate's approver decides on a task in APPROVAL. An approval sets
 * `gate_status=approved` (audit row `task.gate_decision`); a request for changes also moves the
 * task APPROVAL → REVIEW (audit row `task.transition` carrying the decision). Either stores a
 * `task_gate_decisions` row in the same transaction.
 * @throws ApiError 404 `not_found`; 428/412 (If-Match); 403 `separation_of_powers` (the executor);
 *   403 `forbidden` (not the gate's approver: Security → security, RevOps/Claims/Product → main);
 *   409 `conflict` (no gate, not in APPROVAL, or the gate is not pending); 503 `audit_unavailable`.
 */
export async function decideGate(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: GateDecisionInput): Promise<TaskRow> {
  return refusing(deps, actor, id, { action: 'gate', decision: input.decision }, async () => {
    const written = await deps.tasks.change(id, (current): TaskWrite => {
      const row = found(current, id);
      checkIfMatch(ifMatch, row.version);
      if (row.gate === 'none') throw new ApiError('conflict', `Task ${id} has no gate to decide.`);
      checkNotExecutor(row, actor, input.decision === 'approve' ? 'approve' : 'request changes on');
      if (!rolesOf(actor, row).has('approver')) {
        throw new ApiError('forbidden', `${actor} is not the ${row.gate} gate's approver.`);
      }
      if (row.state !== 'APPROVAL') throw new ApiError('conflict', `Task ${id} is ${row.state}; gate decisions are made in APPROVAL.`, { state: row.state });
      if (row.gateStatus !== 'pending') throw new ApiError('conflict', `The ${row.gate} gate of task ${id} is already ${row.gateStatus}.`, { gate_status: row.gateStatus });
      const nowMs = deps.clock.now();
      const decision: GateStatus = input.decision === 'approve' ? 'approved' : 'changes_requested';
      const reason = input.reason !== undefined ? { reason: input.reason } : {};
      const gateDecision = decisionRow(row, actor, decision, nowMs, reason);
      const detail = { gate: row.gate, decision, decision_id: gateDecision.id, ...reason };
      if (decision === 'changes_requested') {
        const move = planMove(deps, row, actor, { to: 'REVIEW', ...reason }, nowMs, { patch: { gateStatus: decision }, detail });
        return { nowMs, patch: move.patch, gateDecision, activities: [move.activity] };
      }
      return {
        nowMs,
        patch: { gateStatus: decision },
        gateDecision,
        activities: [{ actor, kind: 'task.gate_decision', subject: id, detail: { ...detail, version: row.version + 1 } }],
      };
    });
    return written.task;
  });
}

/** An override: why, and the risk `main` accepts by skipping the gate. */
export interface OverrideInput {
  reason: string;
  riskAcceptance: string;
}

/**
 * `POST /v1/tasks/{id}/override`: `main` sets the gate to `overridden` and, in the same
 * transaction, creates a P0 follow-up task (`parent_task_id` = this task, the same gate, type of
 * the gate) so the skipped review still happens.
 * @returns the updated task and its follow-up.
 * @throws ApiError 404; 428/412; 403 `forbidden` (not main); 403 `separation_of_powers` (main
 *   executed the task); 409 `conflict` (no gate, gate already approved/overridden, or DONE);
 *   503 `audit_unavailable`.
 */
export async function overrideGate(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: OverrideInput): Promise<{ task: TaskRow; followUp: TaskRow }> {
  return refusing(deps, actor, id, { action: 'override' }, async () => {
    const written = await deps.tasks.change(id, (current): TaskWrite => {
      const row = found(current, id);
      checkIfMatch(ifMatch, row.version);
      if (actor !== 'main') throw new ApiError('forbidden', 'Only main overrides a gate.');
      if (row.gate === 'none') throw new ApiError('conflict', `Task ${id} has no gate to override.`);
      checkNotExecutor(row, actor, 'override');
      if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE.`, { state: row.state });
      if (row.gateStatus === 'approved' || row.gateStatus === 'overridden') {
        throw new ApiError('conflict', `The ${row.gate} gate of task ${id} is already ${row.gateStatus}.`, { gate_status: row.gateStatus });
      }
      const nowMs = deps.clock.now();
      const gate = row.gate as Exclude<Gate, 'none'>;
      const followUp = newTaskRow(
        actor,
        {
          title: `Follow-up: ${gate} review skipped by override of "${row.title}"`,
          description: `The ${gate} gate of task ${row.id} was overridden by ${actor}.\nReason: ${input.reason}\nRisk accepted: ${input.riskAcceptance}`,
          type: FOLLOW_UP_TYPE[gate],
          priority: 'P0',
          gate,
          parent_task_id: row.id,
        },
        nowMs,
        null,
      );
      const gateDecision = decisionRow(row, actor, 'overridden', nowMs, { reason: input.reason, riskAcceptance: input.riskAcceptance, followUpTaskId: followUp.id });
      return {
        nowMs,
        insert: [followUp],
        patch: { gateStatus: 'overridden' },
        gateDecision,
        activities: [
          createdActivity(actor, followUp),
          {
            actor,
            kind: 'task.override',
            subject: id,
            detail: {
              gate,
              decision_id: gateDecision.id,
              reason: input.reason,
              risk_acceptance: input.riskAcceptance,
              follow_up_task_id: followUp.id,
              version: row.version + 1,
            },
          },
        ],
      };
    });
    return { task: written.task, followUp: written.inserted[0]! };
  });
}
