/**
 * Creating a task (`POST /v1/tasks`), and the new-task row an override's follow-up shares.
 */
import type { ActivityInput } from '../../../platform/audit/trail.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { IdempotencyRef } from '../../../platform/idempotency.js';
import { DEFAULT_GATE, newId, type DodItem, type Gate, type Priority, type TaskInsert, type TaskRow, type TaskType } from '../model.js';
import { checkAssignable, fieldError, refusing, requireKnownGroup, type KernelDeps } from './common.js';

/** A new task, as `POST /v1/tasks` takes it. */
export interface NewTask {
  title: string;
  description?: string;
  type: TaskType;
  priority?: Priority;
  /** Defaults to the gate of the type (SECURITY → Security, …), else none. */
  gate?: Gate;
  /** The checklist texts; items get ids 1, 2, … */
  definition_of_done?: string[];
  /** A known group; never the approver of the task's gate (`checkAssignable`). */
  assigned_group?: string;
  parent_task_id?: string;
}

/** The gate a new task gets: the one asked for, else the gate of its type, else none. */
export function gateOf(input: Pick<NewTask, 'gate' | 'type'>): Gate {
  return input.gate ?? DEFAULT_GATE[input.type] ?? 'none';
}

/**
 * A new task in INBOX, created by `actor` at `nowMs` (Unix ms): a fresh ULID, priority P2 unless
 * asked, the gate of {@link gateOf} (`pending` when there is one), the checklist items numbered
 * from 1, and the creating request's idempotency key and body hash when it had one.
 */
export function newTaskRow(actor: string, input: NewTask, nowMs: number, idem: IdempotencyRef | null): TaskInsert {
  const gate = gateOf(input);
  const dod: DodItem[] = (input.definition_of_done ?? []).map((text, i) => ({ id: i + 1, text, done: false }));
  return {
    id: newId(nowMs),
    title: input.title,
    description: input.description ?? '',
    type: input.type,
    priority: input.priority ?? 'P2',
    state: 'INBOX',
    assignedGroup: input.assigned_group ?? null,
    gate,
    gateStatus: gate === 'none' ? null : 'pending',
    definitionOfDone: JSON.stringify(dod),
    parentTaskId: input.parent_task_id ?? null,
    createdBy: actor,
    idempotencyKey: idem?.key ?? null,
    requestHash: idem?.requestHash ?? null,
    createdAt: nowMs,
    updatedAt: nowMs,
  };
}

/** The `task.created` audit row of a new task: `{title, type, priority, gate, assigned_group, parent_task_id}`. */
export function createdActivity(actor: string, row: TaskInsert): ActivityInput {
  return {
    actor,
    kind: 'task.created',
    subject: row.id,
    detail: {
      title: row.title,
      type: row.type,
      priority: row.priority,
      gate: row.gate,
      assigned_group: row.assignedGroup ?? null,
      parent_task_id: row.parentTaskId ?? null,
    },
  };
}

/**
 * Creates a task in INBOX. Only `main` creates tasks. With `idem`, a retry with the same key and
 * body returns the task it created (`replayed: true`) instead of a second one, as it is now (even
 * one stored before the assignment rule below existed).
 * A gated task (its `gate`, or the gate of its type) is never created assigned to its gate's
 * approver (`checkAssignable`); such a refusal is audited as `task.refused` (subject `tasks`)
 * and stores nothing.
 * @throws ApiError 403 `forbidden` (not main); 422 `validation_failed` (unknown group or parent);
 *   422 `idempotency_key_reused` (same key, different body); 403 `separation_of_powers` (assigned
 *   to the gate's approver, with `gate`, `approver_group`, `assigned_group`); 503 `audit_unavailable`.
 */
export function createTask(deps: KernelDeps, actor: string, input: NewTask, idem: IdempotencyRef | null): Promise<{ task: TaskRow; replayed: boolean }> {
  return refusing(deps, actor, 'tasks', { action: 'create' }, async () => {
    if (actor !== 'main') throw new ApiError('forbidden', 'Only main creates tasks.');
    if (input.assigned_group !== undefined) requireKnownGroup(deps, input.assigned_group, 'assigned_group');
    return deps.tasks.create(actor, idem, input.parent_task_id, (parent) => {
      if (input.assigned_group !== undefined) checkAssignable(null, gateOf(input), input.assigned_group);
      if (input.parent_task_id !== undefined && !parent) throw fieldError('parent_task_id', `no task ${input.parent_task_id}`);
      const nowMs = deps.clock.now();
      const row = newTaskRow(actor, input, nowMs, idem);
      return { nowMs, insert: [row], activities: [createdActivity(actor, row)] };
    });
  });
}
