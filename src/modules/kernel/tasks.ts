/**
 * The kernel's task service (issue 3): create, read, list, transition, gate decisions, override,
 * definition-of-done updates and edits of a task's title, description and priority. Routes and
 * the CLI call these; each mutation runs in one `BEGIN IMMEDIATE` transaction with its audit rows
 * (fail-closed: no audit row, no change), and a policy refusal (403 / 409) is itself audited as
 * `task.refused`. A hand move REVIEW → APPROVAL of a task whose gate is pending also records the
 * gate approver's `approve` dispatch in its transaction (see {@link transitionTask}).
 */
import { createHash } from 'node:crypto';
import { and, asc, eq, gt, type SQL } from 'drizzle-orm';
import type { Activity } from '../../platform/audit/trail.js';
import { activitiesFor, appendActivity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { immediate } from '../../platform/db/open.js';
import { ApiError, type ErrorCode } from '../../platform/http/problem.js';
import type { Groups } from '../identity/groups.js';
import type { TaskState } from './coupling.js';
import { handMovePlan, recordDispatch } from './dispatch-record.js';
import { checkTransition, rolesOf } from './machine.js';
import {
  DEFAULT_GATE,
  DOCS_REQUIRED,
  dodItems,
  FOLLOW_UP_TYPE,
  GATE_APPROVER,
  newId,
  type DodItem,
  type Gate,
  type GateStatus,
  type Priority,
  type TaskRow,
  type TaskType,
} from './model.js';
import { checkIfMatch } from './precondition.js';
import { taskDispatches, taskGateDecisions, tasks } from './schema.js';

/** What the task service runs on. */
export type KernelDeps = { db: Db; clock: Clock; groups: Groups };

/** Reads one task row, or null. */
export function findTask(db: Db, id: string): TaskRow | null {
  return db.orm.select().from(tasks).where(eq(tasks.id, id)).get() ?? null;
}

/**
 * Reads one task row.
 * @throws ApiError 404 `not_found`.
 */
export function requireTask(db: Db, id: string): TaskRow {
  const row = findTask(db, id);
  if (!row) throw new ApiError('not_found', `No task ${id}.`);
  return row;
}

function fieldError(field: string, message: string): ApiError {
  return new ApiError('validation_failed', `The request body is invalid: ${field}: ${message}`, {
    issues: [{ path: [field], code: 'custom', message }],
  });
}

function requireKnownGroup(deps: KernelDeps, group: string, field: string): void {
  if (!deps.groups.has(group)) throw fieldError(field, `unknown group "${group}"; groups: ${[...deps.groups.keys()].join(', ')}`);
}

/**
 * Writes `patch` to the task if it is still at `row.version`, bumping the version
 * (`UPDATE … WHERE id = ? AND version = ?`).
 * @returns the updated row.
 * @throws ApiError 412 `precondition_failed` when another writer got there first.
 */
function updateVersioned(db: Db, row: TaskRow, patch: Partial<TaskRow>, nowMs: number): TaskRow {
  const updated = db.orm
    .update(tasks)
    .set({ ...patch, version: row.version + 1, updatedAt: nowMs })
    .where(and(eq(tasks.id, row.id), eq(tasks.version, row.version)))
    .returning()
    .get();
  if (!updated) throw new ApiError('precondition_failed', `Task ${row.id} changed while this request ran; read it again and retry.`);
  return updated;
}

/** Refusals of policy that are audited: who tried what and why it was refused. */
const AUDITED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['forbidden', 'separation_of_powers', 'illegal_transition', 'done_requirements_unmet']);

/**
 * Runs a task mutation in one `BEGIN IMMEDIATE` transaction. When policy refuses it (403
 * `forbidden` / `separation_of_powers`, 409 `illegal_transition` / `done_requirements_unmet`), the
 * refusal is recorded as a `task.refused` audit row (`{action, code, detail}`) in a transaction of
 * its own, and the error is rethrown. Request errors (404, 412, 422, 428) are not audited.
 */
function mutation<T>(deps: KernelDeps, actor: string, subject: string, action: Record<string, unknown>, fn: () => T): T {
  try {
    return immediate(deps.db, fn);
  } catch (err) {
    if (err instanceof ApiError && AUDITED_REFUSALS.has(err.code)) {
      immediate(deps.db, () =>
        appendActivity(deps.db, { actor, kind: 'task.refused', subject, detail: { ...action, code: err.code, detail: err.detail } }, deps.clock.now()),
      );
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// create

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
  /** A known group; never the approver of the task's gate ({@link checkAssignable}). */
  assigned_group?: string;
  parent_task_id?: string;
}

/** The creating request's Idempotency-Key and the sha-256 of its body. */
export interface Idempotency {
  key: string;
  requestHash: string;
}

/** The gate a new task gets: the one asked for, else the gate of its type, else none. */
function gateOf(input: Pick<NewTask, 'gate' | 'type'>): Gate {
  return input.gate ?? DEFAULT_GATE[input.type] ?? 'none';
}

function insertTask(db: Db, actor: string, input: NewTask, nowMs: number, idem: Idempotency | null): TaskRow {
  const gate = gateOf(input);
  const dod: DodItem[] = (input.definition_of_done ?? []).map((text, i) => ({ id: i + 1, text, done: false }));
  const row = db.orm
    .insert(tasks)
    .values({
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
    })
    .returning()
    .get();
  appendActivity(
    db,
    {
      actor,
      kind: 'task.created',
      subject: row.id,
      detail: { title: row.title, type: row.type, priority: row.priority, gate, assigned_group: row.assignedGroup, parent_task_id: row.parentTaskId },
    },
    nowMs,
  );
  return row;
}

/**
 * Creates a task in INBOX. Only `main` creates tasks. With `idem`, a retry with the same key and
 * body returns the task it created (`replayed: true`) instead of a second one, as it is now (even
 * one stored before the assignment rule below existed).
 * A gated task (its `gate`, or the gate of its type) is never created assigned to its gate's
 * approver ({@link checkAssignable}); such a refusal is audited as `task.refused` (subject `tasks`)
 * and stores nothing.
 * @throws ApiError 403 `forbidden` (not main); 422 `validation_failed` (unknown group or parent);
 *   422 `idempotency_key_reused` (same key, different body); 403 `separation_of_powers` (assigned
 *   to the gate's approver, with `gate`, `approver_group`, `assigned_group`); 503 `audit_unavailable`.
 */
export function createTask(deps: KernelDeps, actor: string, input: NewTask, idem: Idempotency | null): { task: TaskRow; replayed: boolean } {
  const { db, clock } = deps;
  return mutation(deps, actor, 'tasks', { action: 'create' }, () => {
    if (actor !== 'main') throw new ApiError('forbidden', 'Only main creates tasks.');
    if (input.assigned_group !== undefined) requireKnownGroup(deps, input.assigned_group, 'assigned_group');
    if (idem) {
      const prior = db.orm
        .select()
        .from(tasks)
        .where(and(eq(tasks.createdBy, actor), eq(tasks.idempotencyKey, idem.key)))
        .get();
      if (prior) {
        if (prior.requestHash !== idem.requestHash) {
          throw new ApiError('idempotency_key_reused', `Idempotency-Key ${idem.key} was already used for a different task (${prior.id}); use a new key.`);
        }
        return { task: prior, replayed: true };
      }
    }
    if (input.assigned_group !== undefined) checkAssignable(null, gateOf(input), input.assigned_group);
    if (input.parent_task_id !== undefined && !findTask(db, input.parent_task_id)) {
      throw fieldError('parent_task_id', `no task ${input.parent_task_id}`);
    }
    return { task: insertTask(db, actor, input, clock.now(), idem), replayed: false };
  });
}

// ---------------------------------------------------------------------------------------------
// list

/** Filters for {@link listTasks}; `group` matches `assigned_group`. */
export interface TaskFilter {
  state?: TaskState;
  group?: string;
  type?: TaskType;
  /** Page size, 1–200. */
  limit: number;
  /** Return tasks with ids after this one (the previous page's `next_cursor`). */
  startingAfter?: string;
}

/** A page of tasks in id (creation) order; `hasMore` when another page follows. */
export function listTasks(db: Db, f: TaskFilter): { rows: TaskRow[]; hasMore: boolean } {
  const where: SQL[] = [];
  if (f.state) where.push(eq(tasks.state, f.state));
  if (f.group) where.push(eq(tasks.assignedGroup, f.group));
  if (f.type) where.push(eq(tasks.type, f.type));
  if (f.startingAfter) where.push(gt(tasks.id, f.startingAfter));
  const rows = db.orm
    .select()
    .from(tasks)
    .where(and(...where))
    .orderBy(asc(tasks.id))
    .limit(f.limit + 1)
    .all();
  return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
}

// ---------------------------------------------------------------------------------------------
// transitions

/** One unmet DONE requirement. */
export type DoneRequirement =
  | { requirement: 'gate'; gate: Gate; gate_status: GateStatus | null }
  | { requirement: 'definition_of_done'; item_id: number; text: string }
  | { requirement: 'docs_updated'; type: TaskType };

/**
 * What stands between a task and DONE (issue 3): the gate approved or overridden (or no gate),
 * every definition-of-done item done, and `docs_updated` for SECURITY and FEATURE tasks.
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
 * the approver of the task's gate ({@link checkAssignable}).
 */
export interface TransitionInput {
  to: TaskState;
  reason?: string;
  assignedGroup?: string;
}

/**
 * Moves `row` to `input.to` as `actor` inside the caller's transaction: checks the table and the
 * actor's role, the transition's own requirements, writes the versioned update and the
 * `task.transition` audit row. Also used by the dispatch loop (actor `system`) and by gate
 * decisions (`extra` carries their gate change). Any move may carry `assignedGroup` (main only),
 * which must not be the approver of the task's gate ({@link checkAssignable}).
 * @throws ApiError 409 `illegal_transition`, 403 `forbidden`, 422 `validation_failed` (READY with no
 *   assigned group, BLOCKED with no reason, unknown group), 403 `separation_of_powers` (assigning a
 *   gated task to its gate's approver, with `gate`, `approver_group`, `assigned_group`),
 *   409 `done_requirements_unmet` (with `missing`), 412 `precondition_failed`,
 *   503 `audit_unavailable`.
 */
export function applyTransition(
  deps: KernelDeps,
  row: TaskRow,
  actor: string,
  input: TransitionInput,
  extra: { patch?: Partial<TaskRow>; detail?: Record<string, unknown> } = {},
): TaskRow {
  const from = row.state as TaskState;
  const { to } = input;
  checkTransition(row, to, actor);
  const patch: Partial<TaskRow> = { state: to, ...extra.patch };
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
  const nowMs = deps.clock.now();
  const updated = updateVersioned(deps.db, row, patch, nowMs);
  appendActivity(
    deps.db,
    {
      actor,
      kind: 'task.transition',
      subject: row.id,
      detail: {
        from,
        to,
        version: updated.version,
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
        ...(patch.assignedGroup !== undefined ? { assigned_group: patch.assignedGroup } : {}),
        ...(patch.executorGroup !== undefined ? { executor_group: patch.executorGroup } : {}),
        ...extra.detail,
      },
    },
    nowMs,
  );
  return updated;
}

/**
 * `POST /v1/tasks/{id}/transition`: moves a task as `actor`, if `ifMatch` names its current
 * version. See {@link applyTransition} for the rules and errors; also 404 `not_found`,
 * 428 `precondition_required`, 412 `precondition_failed`.
 *
 * A hand move tells the group that now has work, as the dispatch loop would have
 * ({@link handMovePlan}): REVIEW → APPROVAL (main) of a task whose gate is pending records the
 * `approve` dispatch for the gate's approver; a move into DOING by another group than the assigned
 * one (main's rework or unblock) records an `execute` dispatch for the assigned group. Either is
 * stored in the same transaction under `dispatch_key` = `<id>:<target>:<version before the move>`
 * with the `dispatch.created` audit row as `actor` ({@link recordDispatch}), and the
 * `task.transition` row carries its `dispatch_id`. The loop dispatches only READY and REVIEW
 * tasks, so it never adds a second one.
 * A failed move (412, 409, 403, 422, …) rolls back and records none.
 * @returns the moved task (the dispatch is read through `GET /v1/dispatches`).
 */
export function transitionTask(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: TransitionInput): TaskRow {
  return mutation(deps, actor, id, { action: 'transition', to: input.to }, () => {
    const row = requireTask(deps.db, id);
    checkIfMatch(ifMatch, row.version);
    const plan = handMovePlan(row, input.to, input.assignedGroup ?? row.assignedGroup, actor);
    if (!plan) return applyTransition(deps, row, actor, input);
    const nowMs = deps.clock.now();
    const dispatchId = newId(nowMs);
    const updated = applyTransition(deps, row, actor, input, { detail: { dispatch_id: dispatchId } });
    recordDispatch(deps.db, row, plan, actor, nowMs, dispatchId);
    return updated;
  });
}

// ---------------------------------------------------------------------------------------------
// gates

/**
 * The separation-of-powers rule: the group that executed a task never approves (or overrides) its
 * gate, even when it is the gate's approver.
 * @throws ApiError 403 `separation_of_powers`.
 */
function checkNotExecutor(row: TaskRow, actor: string, what: string): void {
  if (row.executorGroup !== null && row.executorGroup === actor) {
    throw new ApiError('separation_of_powers', `${actor} executed task ${row.id}, so it may not ${what} its ${row.gate} gate; another group must.`, {
      executor_group: row.executorGroup,
    });
  }
}

/**
 * The separation-of-powers rule at assignment: a gated task is never assigned to the approver of
 * its gate ({@link GATE_APPROVER}: Security → security, RevOps/Claims/Product → main). The
 * assigned group is the one that executes the task, and the executor may neither approve nor
 * override its gate ({@link checkNotExecutor}), so such a task could never leave APPROVAL.
 * @param taskId the task, or null for one being created.
 * @throws ApiError 403 `separation_of_powers` with `gate`, `approver_group`, `assigned_group`.
 */
function checkAssignable(taskId: string | null, gate: Gate, group: string): void {
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

function recordDecision(db: Db, row: TaskRow, actor: string, decision: GateStatus, nowMs: number, extra: { reason?: string; riskAcceptance?: string; followUpTaskId?: string } = {}): string {
  const id = newId(nowMs);
  db.orm
    .insert(taskGateDecisions)
    .values({
      id,
      taskId: row.id,
      gate: row.gate,
      decision,
      actor,
      reason: extra.reason ?? null,
      riskAcceptance: extra.riskAcceptance ?? null,
      followUpTaskId: extra.followUpTaskId ?? null,
      createdAt: nowMs,
    })
    .run();
  return id;
}

/** A gate decision: approve, or request changes (which sends the task APPROVAL → REVIEW). */
export interface GateDecisionInput {
  decision: 'approve' | 'request_changes';
  reason?: string;
}

/**
 * `POST /v1/tasks/{id}/gate`: the gate's approver decides on a task in APPROVAL.
 * @throws ApiError 404 `not_found`; 428/412 (If-Match); 403 `separation_of_powers` (the executor);
 *   403 `forbidden` (not the gate's approver: Security → security, RevOps/Claims/Product → main);
 *   409 `conflict` (no gate, not in APPROVAL, or the gate is not pending); 503 `audit_unavailable`.
 */
export function decideGate(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: GateDecisionInput): TaskRow {
  const { db, clock } = deps;
  return mutation(deps, actor, id, { action: 'gate', decision: input.decision }, () => {
    const row = requireTask(db, id);
    checkIfMatch(ifMatch, row.version);
    if (row.gate === 'none') throw new ApiError('conflict', `Task ${id} has no gate to decide.`);
    checkNotExecutor(row, actor, input.decision === 'approve' ? 'approve' : 'request changes on');
    if (!rolesOf(actor, row).has('approver')) {
      throw new ApiError('forbidden', `${actor} is not the ${row.gate} gate's approver.`);
    }
    if (row.state !== 'APPROVAL') throw new ApiError('conflict', `Task ${id} is ${row.state}; gate decisions are made in APPROVAL.`, { state: row.state });
    if (row.gateStatus !== 'pending') throw new ApiError('conflict', `The ${row.gate} gate of task ${id} is already ${row.gateStatus}.`, { gate_status: row.gateStatus });
    const nowMs = clock.now();
    const decision: GateStatus = input.decision === 'approve' ? 'approved' : 'changes_requested';
    const decisionId = recordDecision(db, row, actor, decision, nowMs, { ...(input.reason !== undefined ? { reason: input.reason } : {}) });
    const detail = { gate: row.gate, decision, decision_id: decisionId, ...(input.reason !== undefined ? { reason: input.reason } : {}) };
    if (decision === 'changes_requested') {
      return applyTransition(deps, row, actor, { to: 'REVIEW', ...(input.reason !== undefined ? { reason: input.reason } : {}) }, { patch: { gateStatus: decision }, detail });
    }
    const updated = updateVersioned(db, row, { gateStatus: decision }, nowMs);
    appendActivity(db, { actor, kind: 'task.gate_decision', subject: id, detail: { ...detail, version: updated.version } }, nowMs);
    return updated;
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
export function overrideGate(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: OverrideInput): { task: TaskRow; followUp: TaskRow } {
  const { db, clock } = deps;
  return mutation(deps, actor, id, { action: 'override' }, () => {
    const row = requireTask(db, id);
    checkIfMatch(ifMatch, row.version);
    if (actor !== 'main') throw new ApiError('forbidden', 'Only main overrides a gate.');
    if (row.gate === 'none') throw new ApiError('conflict', `Task ${id} has no gate to override.`);
    checkNotExecutor(row, actor, 'override');
    if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE.`, { state: row.state });
    if (row.gateStatus === 'approved' || row.gateStatus === 'overridden') {
      throw new ApiError('conflict', `The ${row.gate} gate of task ${id} is already ${row.gateStatus}.`, { gate_status: row.gateStatus });
    }
    const nowMs = clock.now();
    const gate = row.gate as Exclude<Gate, 'none'>;
    const followUp = insertTask(
      db,
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
    const decisionId = recordDecision(db, row, actor, 'overridden', nowMs, { reason: input.reason, riskAcceptance: input.riskAcceptance, followUpTaskId: followUp.id });
    const updated = updateVersioned(db, row, { gateStatus: 'overridden' }, nowMs);
    appendActivity(
      db,
      {
        actor,
        kind: 'task.override',
        subject: id,
        detail: { gate, decision_id: decisionId, reason: input.reason, risk_acceptance: input.riskAcceptance, follow_up_task_id: followUp.id, version: updated.version },
      },
      nowMs,
    );
    return { task: updated, followUp };
  });
}

// ---------------------------------------------------------------------------------------------
// definition of done

/** Checklist changes: items by id, and/or `docs_updated`. */
export interface DodUpdate {
  items?: { id: number; done: boolean }[];
  docsUpdated?: boolean;
}

/**
 * `PATCH /v1/tasks/{id}/dod`: ticks definition-of-done items and/or sets `docs_updated`. Allowed
 * for `main`, the assigned group and the executor.
 * @throws ApiError 404; 428/412; 403 `forbidden`; 409 `conflict` (task is DONE);
 *   422 `validation_failed` (unknown item id); 503 `audit_unavailable`.
 */
export function updateDod(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: DodUpdate): TaskRow {
  const { db, clock } = deps;
  return mutation(deps, actor, id, { action: 'dod' }, () => {
    const row = requireTask(db, id);
    checkIfMatch(ifMatch, row.version);
    const roles = rolesOf(actor, row);
    if (!roles.has('main') && !roles.has('assignee') && row.executorGroup !== actor) {
      throw new ApiError('forbidden', `Only main, the assigned group or the executor update task ${id}'s definition of done.`);
    }
    if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE; its definition of done is final.`, { state: row.state });
    const items = dodItems(row);
    for (const change of input.items ?? []) {
      const item = items.find((i) => i.id === change.id);
      if (!item) throw fieldError('items', `task ${id} has no definition-of-done item ${change.id}`);
      item.done = change.done;
    }
    const nowMs = clock.now();
    const updated = updateVersioned(
      db,
      row,
      { definitionOfDone: JSON.stringify(items), ...(input.docsUpdated !== undefined ? { docsUpdated: input.docsUpdated } : {}) },
      nowMs,
    );
    appendActivity(
      db,
      {
        actor,
        kind: 'task.dod_updated',
        subject: id,
        detail: { items: input.items ?? [], ...(input.docsUpdated !== undefined ? { docs_updated: input.docsUpdated } : {}), version: updated.version },
      },
      nowMs,
    );
    return updated;
  });
}

// ---------------------------------------------------------------------------------------------
// edit title, description, priority

/**
 * An edit of a task's own fields (`PATCH /v1/tasks/{id}`): the members present are the fields the
 * caller asks to set. `type` and `gate` are not here: they are fixed at creation.
 */
export interface TaskEdit {
  title?: string;
  description?: string;
  priority?: Priority;
}

/** What the audit row records of a description: its length and sha-256 hex, never the text. */
export interface TextDigest {
  length: number;
  sha256: string;
}

/**
 * One changed field in a `task.updated` audit row. `title` and `priority` are recorded as they
 * are (as `task.created` records them); `description` as a {@link TextDigest}, because
 * `task.created` does not store the description either and it may be up to 10 000 characters.
 */
export interface FieldChange<T> {
  from: T;
  to: T;
}

/** The `changes` member of a `task.updated` audit row: exactly the fields that changed. */
export interface TaskChanges {
  title?: FieldChange<string>;
  description?: FieldChange<TextDigest>;
  priority?: FieldChange<Priority>;
}

function digestOf(text: string): TextDigest {
  return { length: text.length, sha256: createHash('sha256').update(text, 'utf8').digest('hex') };
}

/** The fields the assigned group may edit; every other field of {@link TaskEdit} is main's. */
const ASSIGNEE_EDITABLE: ReadonlySet<keyof TaskEdit> = new Set(['description']);

/**
 * `PATCH /v1/tasks/{id}`: edits a task's title, description and/or priority. `main` may edit all
 * three; the assigned group only the description (asking for any other field, even with its
 * current value, is refused); anyone else is refused. Fields equal to the current value are not
 * changes: when nothing changes, the task is answered as it is, with no version bump and no audit
 * row. Otherwise one versioned update (`version + 1`, `updated_at`) and one `task.updated` audit
 * row `{changes: {field: {from, to}}, version}` ({@link TaskChanges}) in one transaction.
 * @returns the task after the edit (the same row for a no-op).
 * @throws ApiError 404 `not_found`; 428 `precondition_required` / 412 `precondition_failed`
 *   (If-Match); 403 `forbidden` (audited as `task.refused`); 409 `conflict` (task is DONE, with
 *   `state`); 503 `audit_unavailable`.
 */
export function updateTask(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: TaskEdit): TaskRow {
  const { db, clock } = deps;
  const fields = (Object.keys(input) as (keyof TaskEdit)[]).filter((f) => input[f] !== undefined).sort();
  return mutation(deps, actor, id, { action: 'update', fields }, () => {
    const row = requireTask(db, id);
    checkIfMatch(ifMatch, row.version);
    const roles = rolesOf(actor, row);
    if (!roles.has('main')) {
      if (!roles.has('assignee')) throw new ApiError('forbidden', `Only main or the assigned group edit task ${id}.`);
      const mainOnly = fields.filter((f) => !ASSIGNEE_EDITABLE.has(f));
      if (mainOnly.length > 0) {
        throw new ApiError('forbidden', `The assigned group may edit only the description of task ${id}; ${mainOnly.join(' and ')} ${mainOnly.length === 1 ? 'is' : 'are'} main's to change.`, {
          fields: mainOnly,
        });
      }
    }
    if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE; its title, description and priority are final.`, { state: row.state });
    const patch: Partial<TaskRow> = {};
    const changes: TaskChanges = {};
    if (input.title !== undefined && input.title !== row.title) {
      patch.title = input.title;
      changes.title = { from: row.title, to: input.title };
    }
    if (input.description !== undefined && input.description !== row.description) {
      patch.description = input.description;
      changes.description = { from: digestOf(row.description), to: digestOf(input.description) };
    }
    if (input.priority !== undefined && input.priority !== row.priority) {
      patch.priority = input.priority;
      changes.priority = { from: row.priority as Priority, to: input.priority };
    }
    if (Object.keys(patch).length === 0) return row;
    const nowMs = clock.now();
    const updated = updateVersioned(db, row, patch, nowMs);
    appendActivity(db, { actor, kind: 'task.updated', subject: id, detail: { changes, version: updated.version } }, nowMs);
    return updated;
  });
}

// ---------------------------------------------------------------------------------------------
// context

/** One gate decision as the API answers. */
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
export function gateDecisionsFor(db: Db, taskId: string): GateDecisionJson[] {
  return db.orm
    .select()
    .from(taskGateDecisions)
    .where(eq(taskGateDecisions.taskId, taskId))
    .orderBy(asc(taskGateDecisions.id))
    .all()
    .map((d) => ({
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
export function dispatchesFor(db: Db, taskId: string): (typeof taskDispatches.$inferSelect)[] {
  return db.orm.select().from(taskDispatches).where(eq(taskDispatches.taskId, taskId)).orderBy(asc(taskDispatches.id)).all();
}

/**
 * What a dispatched agent receives as its prompt context (issue 3, "Cross-agent context"): the
 * task row, its audit rows (oldest first, at most 1000), and its gate decisions.
 * @throws ApiError 404 `not_found`.
 */
export function taskContext(db: Db, id: string): { task: TaskRow; activity: Activity[]; gateDecisions: GateDecisionJson[] } {
  const task = requireTask(db, id);
  return { task, activity: activitiesFor(db, id), gateDecisions: gateDecisionsFor(db, id) };
}
