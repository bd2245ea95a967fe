/**
 * What the kernel's services share: the deps they run on, the audited refusal, and the checks
 * more than one operation makes (a known group, an existing task, separation of powers at
 * assignment).
 */
import { withAuditedRefusals } from '../../../platform/audit/refusal.js';
import type { Clock } from '../../../platform/clock.js';
import { ApiError, type ErrorCode } from '../../../platform/http/problem.js';
import type { Groups } from '../../identity/groups.js';
import { GATE_APPROVER, type Gate, type TaskRow } from '../model.js';
import type { TaskStore } from '../store.js';

/** What the kernel's services run on. */
export interface KernelDeps {
  /** Tasks, gate decisions, dispatches and their audit rows. */
  tasks: TaskStore;
  clock: Clock;
  /** The groups policy: a task is assigned only to a known group. */
  groups: Groups;
}

/** Refusals of policy that are audited: who tried what and why it was refused. */
const AUDITED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['forbidden', 'separation_of_powers', 'illegal_transition', 'done_requirements_unmet']);

/**
 * Runs a task mutation. When policy refuses it (403 `forbidden` / `separation_of_powers`, 409
 * `illegal_transition` / `done_requirements_unmet`), the refusal is recorded as a `task.refused`
 * audit row (`{...action, code, detail}`, subject `subject`) in a transaction of its own, and the
 * error is rethrown. Request errors (404, 412, 422, 428) are not audited.
 * @throws what `fn` throws; 503 `audit_unavailable` when the refusal cannot be recorded.
 */
export function refusing<T>(deps: Pick<KernelDeps, 'tasks' | 'clock'>, actor: string, subject: string, action: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  return withAuditedRefusals(AUDITED_REFUSALS, fn, (err) =>
    deps.tasks.record({ actor, kind: 'task.refused', subject, detail: { ...action, code: err.code, detail: err.detail } }, deps.clock.now()),
  );
}

/** A 422 `validation_failed` naming one body member, shaped like the schema validator's. */
export function fieldError(field: string, message: string): ApiError {
  return new ApiError('validation_failed', `The request body is invalid: ${field}: ${message}`, {
    issues: [{ path: [field], code: 'custom', message }],
  });
}

/**
 * Checks that `group` is in the groups policy.
 * @throws ApiError 422 `validation_failed` on `field`, listing the known groups.
 */
export function requireKnownGroup(deps: Pick<KernelDeps, 'groups'>, group: string, field: string): void {
  if (!deps.groups.has(group)) throw fieldError(field, `unknown group "${group}"; groups: ${[...deps.groups.keys()].join(', ')}`);
}

/**
 * The task a plan was handed, when it exists.
 * @throws ApiError 404 `not_found`.
 */
export function found(row: TaskRow | null, id: string): TaskRow {
  if (!row) throw new ApiError('not_found', `No task ${id}.`);
  return row;
}

/**
 * The separation-of-powers rule at assignment: a gated task is never assigned to the approver of
 * its gate ({@link GATE_APPROVER}: Security → security, RevOps/Claims/Product → main). The
 * assigned group is the one that executes the task, and the executor may neither approve nor
 * override its gate (`checkNotExecutor` in `gates.ts`), so such a task could never leave APPROVAL.
 * @param taskId the task, or null for one being created.
 * @throws ApiError 403 `separation_of_powers` with `gate`, `approver_group`, `assigned_group`.
 */
export function checkAssignable(taskId: string | null, gate: Gate, group: string): void {
  if (gate === 'none') return;
  const approver = GATE_APPROVER[gate];
  if (group !== approver) return;
  const whose = taskId === null ? "The new task's" : `Task ${taskId}'s`;
  throw new ApiError(
    'separation_of_powers',
    `${whose} ${gate} gate is approved by ${approver}, so ${group} may not be assigned it (it would approve its own work); assign another group.`,
    { gate, approver_group: approver, assigned_group: group },
  );
}
