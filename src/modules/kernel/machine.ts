/**
 * The task state machine, table-driven and in one place: which transitions exist and which roles
 * may take each. Everything else in the kernel asks this module; no other file decides whether a
 * move is legal.
 */
import { ApiError } from '../../platform/http/problem.js';
import type { TaskState } from './schema.js';
import { GATE_APPROVER, type Gate } from './model.js';

/**
 * What an actor is to a task:
 * - `main`: the coordinator group;
 * - `assignee`: the task's `assigned_group`;
 * - `approver`: the approver group of the task's gate (see {@link GATE_APPROVER});
 * - `system`: the dispatch loop.
 */
export type Role = 'main' | 'assignee' | 'approver' | 'system';

/** One row of the table. `to: 'PREVIOUS'` means "the state the task was blocked from". */
export interface TransitionRule {
  from: TaskState;
  to: TaskState | 'PREVIOUS';
  by: readonly Role[];
}

const BLOCKABLE: readonly TaskState[] = ['INBOX', 'TRIAGED', 'READY', 'DOING', 'REVIEW', 'APPROVAL'];

/**
 * The transition table. Forward INBOX → … → DONE; rework REVIEW → DOING; changes requested
 * APPROVAL → REVIEW; any state but DONE → BLOCKED (with a reason) and back to where it came from.
 */
export const TRANSITIONS: readonly TransitionRule[] = [
  { from: 'INBOX', to: 'TRIAGED', by: ['main'] },
  { from: 'TRIAGED', to: 'READY', by: ['main'] },
  { from: 'READY', to: 'DOING', by: ['assignee', 'system'] },
  { from: 'DOING', to: 'REVIEW', by: ['assignee'] },
  { from: 'REVIEW', to: 'DOING', by: ['main', 'assignee'] },
  { from: 'REVIEW', to: 'APPROVAL', by: ['main', 'system'] },
  { from: 'APPROVAL', to: 'REVIEW', by: ['main', 'approver'] },
  { from: 'APPROVAL', to: 'DONE', by: ['main'] },
  ...BLOCKABLE.map((from): TransitionRule => ({ from, to: 'BLOCKED', by: ['main', 'assignee'] })),
  { from: 'BLOCKED', to: 'PREVIOUS', by: ['main', 'assignee'] },
];

/** The facts of a task the machine reads. */
export interface MachineTask {
  state: TaskState;
  blockedFrom: string | null;
  assignedGroup: string | null;
  gate: string;
}

function target(rule: TransitionRule, task: MachineTask): TaskState {
  return rule.to === 'PREVIOUS' ? (task.blockedFrom as TaskState) : rule.to;
}

/** The states a task may move to from where it is, in table order. */
export function allowedTargets(task: MachineTask): TaskState[] {
  return TRANSITIONS.filter((r) => r.from === task.state).map((r) => target(r, task));
}

/** The roles `actor` (a group name, or `system`) holds on `task`. */
export function rolesOf(actor: string, task: MachineTask): Set<Role> {
  const roles = new Set<Role>();
  if (actor === 'system') roles.add('system');
  if (actor === 'main') roles.add('main');
  if (task.assignedGroup !== null && actor === task.assignedGroup) roles.add('assignee');
  if (task.gate !== 'none' && GATE_APPROVER[task.gate as Exclude<Gate, 'none'>] === actor) roles.add('approver');
  return roles;
}

/**
 * Checks that `actor` may move `task` to `to`.
 * @returns the matching rule.
 * @throws ApiError 409 `illegal_transition` (with `state` and `allowed`) when the table has no such
 *   transition; 403 `forbidden` (with `allowed_roles`) when the actor holds none of its roles.
 */
export function checkTransition(task: MachineTask, to: TaskState, actor: string): TransitionRule {
  const rule = TRANSITIONS.find((r) => r.from === task.state && target(r, task) === to);
  if (!rule) {
    const allowed = allowedTargets(task);
    throw new ApiError('illegal_transition', `${task.state} → ${to} is not a transition; from ${task.state} a task may move to ${allowed.join(', ') || 'nothing'}.`, {
      state: task.state,
      allowed,
    });
  }
  const roles = rolesOf(actor, task);
  if (!rule.by.some((r) => roles.has(r))) {
    throw new ApiError('forbidden', `${actor} may not move a task ${task.state} → ${to}; that is for ${rule.by.map(describeRole(task)).join(' or ')}.`, {
      allowed_roles: rule.by,
    });
  }
  return rule;
}

function describeRole(task: MachineTask): (role: Role) => string {
  return (role) => {
    switch (role) {
      case 'main':
        return 'main';
      case 'assignee':
        return task.assignedGroup ? `the assigned group (${task.assignedGroup})` : 'the assigned group (none yet)';
      case 'approver':
        return task.gate === 'none' ? 'the gate approver (no gate)' : `the ${task.gate} approver (${GATE_APPROVER[task.gate as Exclude<Gate, 'none'>]})`;
      case 'system':
        return 'the dispatch loop';
    }
  };
}
