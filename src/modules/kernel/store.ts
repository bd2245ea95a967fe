/**
 * The kernel's storage seam: {@link TaskStore}, what the task and dispatch services ask of a
 * database, and {@link sqliteTaskStore}, its SQLite implementation (drizzle's query builder over
 * the kernel's tables in `schema.ts`). This is the only file of the kernel that writes SQL; the
 * call path's coupling lookup (`coupling.ts`) is the one read kept apart, because it must stay
 * synchronous.
 *
 * Every method returns a promise, so an asynchronous engine can implement the same interface.
 * Every write is one transaction that applies the change and appends its audit rows, or changes
 * nothing and rejects. Read-modify-write goes through a synchronous, pure `plan` callback: the
 * store reads the current row inside the transaction and hands it to `plan`, which returns what to
 * write (a {@link TaskWrite}: rows and audit rows) or throws an ApiError to refuse, which rolls the
 * transaction back. The If-Match check, the state machine and the separation-of-powers rules all
 * run in `plan`, so they see the row the write is made against.
 */
import { and, asc, eq, gt, isNotNull, ne, or, type SQL } from 'drizzle-orm';
import { activitiesFor, appendActivities, type Activity, type ActivityInput } from '../../platform/audit/trail.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import type { DispatchInsert, DispatchRow, GateDecisionInsert, GateDecisionRow, TaskInsert, TaskPatch, TaskRow, TaskType } from './model.js';
import { taskDispatches, taskGateDecisions, tasks, type TaskState } from './schema.js';

/**
 * What a plan decided to write, all in one transaction: new tasks, a change of the task read
 * (`patch`), a gate decision, a dispatch, and the audit rows recording them, appended in order.
 */
export interface TaskWrite {
  /** Unix ms: the audit rows' time and the changed task's `updated_at`. */
  nowMs: number;
  /** Tasks to insert (a created task, an override's follow-up), in order. */
  insert?: TaskInsert[];
  /**
   * Columns of the task read to set. The store also sets `version` to the version read + 1 and
   * `updated_at` to `nowMs`, only if the task is still at the version read (else 412
   * `precondition_failed`), so audit rows may name `version + 1` as the new version.
   */
  patch?: TaskPatch;
  gateDecision?: GateDecisionInsert;
  /** A dispatch, under its unique `dispatch_key`. */
  dispatch?: DispatchInsert;
  activities: ActivityInput[];
}

/** What a {@link TaskWrite} left: the task after it, the tasks it inserted, its dispatch. */
export interface TaskWritten {
  task: TaskRow;
  inserted: TaskRow[];
  dispatch: DispatchRow | null;
}

/** One page of rows in id order; `hasMore` when another page follows. */
export interface RowPage<T> {
  rows: T[];
  hasMore: boolean;
}

/** Filters for {@link TaskStore.list}; `group` matches `assigned_group`. */
export interface TaskFilter {
  state?: TaskState;
  group?: string;
  type?: TaskType;
  /** Page size, 1–200. */
  limit: number;
  /** Return tasks with ids after this one (the previous page's `next_cursor`). */
  startingAfter?: string;
}

/** Filters for {@link TaskStore.listDispatches}: one group's dispatches. */
export interface DispatchFilter {
  group: string;
  status?: 'pending' | 'acked';
  /** Page size, 1–200. */
  limit: number;
  startingAfter?: string;
}

/** An acknowledgement a plan decided on: when, and its audit rows. */
export interface DispatchAck {
  /** Unix ms, stored as `acked_at` and the audit rows' time. */
  nowMs: number;
  activities: ActivityInput[];
}

/** The kernel's storage: tasks, their gate decisions and dispatches, and their audit rows. */
export interface TaskStore {
  /** One task, or null. */
  find(id: string): Promise<TaskRow | null>;
  /** A page of tasks in id (creation) order. */
  list(filter: TaskFilter): Promise<RowPage<TaskRow>>;
  /** A task's gate decisions, oldest first. */
  gateDecisions(taskId: string): Promise<GateDecisionRow[]>;
  /** The dispatches made for a task, oldest first. */
  dispatchesOf(taskId: string): Promise<DispatchRow[]>;
  /** The audit rows whose subject is the task, oldest first, at most `limit` (default 1000). */
  activity(taskId: string, limit?: number): Promise<Activity[]>;
  /**
   * Creates a task once per idempotency key ({@link idempotent}): when `idem.key` was already
   * used by `actor`, answers the task it made, as it is now (`replayed: true`), and writes
   * nothing. Otherwise reads the parent named by `parentId` (null when none or missing) and
   * writes what `plan(parent)` returns; its first inserted task is the one answered.
   * @throws ApiError 422 `idempotency_key_reused` (same key, other body); what `plan` throws;
   *   503 `audit_unavailable`.
   */
  create(actor: string, idem: IdempotencyRef | null, parentId: string | undefined, plan: (parent: TaskRow | null) => TaskWrite): Promise<{ task: TaskRow; replayed: boolean }>;
  /**
   * Changes one task: reads it (null when missing) and writes what `plan` returns; a null plan
   * leaves it as it is (no version bump, no audit row) and answers it.
   * @throws what `plan` throws (it must throw for a missing task); 412 `precondition_failed`;
   *   503 `audit_unavailable`.
   */
  change(id: string, plan: (task: TaskRow | null) => TaskWrite | null): Promise<TaskWritten>;
  /** The ids of the tasks the dispatch loop may move, oldest first (keep in step with `planFor`). */
  dispatchCandidates(): Promise<string[]>;
  /**
   * The dispatch loop's write: like {@link change}, but answers the dispatch made, or null when
   * `plan` returns null (nothing due) or another writer got there first (the `dispatch_key` is
   * taken, or the task moved on), so a transition is dispatched at most once.
   * @throws 503 `audit_unavailable` and engine errors (nothing written).
   */
  dispatch(taskId: string, plan: (task: TaskRow | null) => TaskWrite | null): Promise<DispatchRow | null>;
  /** A page of one group's dispatches, oldest first. */
  listDispatches(filter: DispatchFilter): Promise<RowPage<DispatchRow>>;
  /**
   * Acknowledges a dispatch: reads it (null when missing) and, when `plan` returns an ack, sets it
   * `acked` with its audit rows; a null plan answers it unchanged.
   * @throws what `plan` throws (it must throw for a missing dispatch); 503 `audit_unavailable`.
   */
  ackDispatch(id: string, plan: (dispatch: DispatchRow | null) => DispatchAck | null): Promise<DispatchRow>;
  /** Appends an audit row on its own (a refusal: nothing else changed). @throws 503 `audit_unavailable`. */
  record(activity: ActivityInput, nowMs: number): Promise<void>;
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * The {@link TaskStore} over one SQLite database. Each write runs in a `BEGIN IMMEDIATE`
 * transaction (`immediate()`), so two connections or processes never interleave a read and the
 * write planned on it; the work is synchronous and the promise is settled when it returns.
 */
export function sqliteTaskStore(db: Db): TaskStore {
  const findRow = (id: string): TaskRow | null => db.orm.select().from(tasks).where(eq(tasks.id, id)).get() ?? null;

  /** Writes `w` inside the caller's transaction, against `current` (the task read, if any). */
  const apply = (current: TaskRow | null, w: TaskWrite): TaskWritten => {
    const inserted = (w.insert ?? []).map((values) => db.orm.insert(tasks).values(values).returning().get());
    let task = current;
    if (w.patch) {
      if (!current) throw new Error('a task change needs the task it changes');
      task =
        db.orm
          .update(tasks)
          .set({ ...w.patch, version: current.version + 1, updatedAt: w.nowMs })
          .where(and(eq(tasks.id, current.id), eq(tasks.version, current.version)))
          .returning()
          .get() ?? null;
      if (!task) throw new ApiError('precondition_failed', `Task ${current.id} changed while this request ran; read it again and retry.`);
    }
    if (w.gateDecision) db.orm.insert(taskGateDecisions).values(w.gateDecision).run();
    const dispatch = w.dispatch ? db.orm.insert(taskDispatches).values(w.dispatch).returning().get() : null;
    appendActivities(db, w.activities, w.nowMs);
    const answer = task ?? inserted[0];
    if (!answer) throw new Error('a task write must change or insert a task');
    return { task: answer, inserted, dispatch };
  };

  return {
    async find(id) {
      return findRow(id);
    },

    async list(f) {
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
    },

    async gateDecisions(taskId) {
      return db.orm.select().from(taskGateDecisions).where(eq(taskGateDecisions.taskId, taskId)).orderBy(asc(taskGateDecisions.id)).all();
    },

    async dispatchesOf(taskId) {
      return db.orm.select().from(taskDispatches).where(eq(taskDispatches.taskId, taskId)).orderBy(asc(taskDispatches.id)).all();
    },

    async activity(taskId, limit) {
      return activitiesFor(db, taskId, limit);
    },

    async create(actor, idem, parentId, plan) {
      return immediate(db, () => {
        const { value, replayed } = idempotent(
          idem,
          (key) => {
            const prior = db.orm
              .select()
              .from(tasks)
              .where(and(eq(tasks.createdBy, actor), eq(tasks.idempotencyKey, key)))
              .get();
            return prior && { value: prior, requestHash: prior.requestHash, id: prior.id };
          },
          () => apply(null, plan(parentId === undefined ? null : findRow(parentId))).task,
          (prior) => `task ${prior.id}`,
        );
        return { task: value, replayed };
      });
    },

    async change(id, plan) {
      return immediate(db, () => {
        const current = findRow(id);
        const w = plan(current);
        if (w) return apply(current, w);
        if (!current) throw new Error(`the plan for a change of task ${id} neither refused nor wrote, and there is no such task`);
        return { task: current, inserted: [], dispatch: null };
      });
    },

    async dispatchCandidates() {
      return db.orm
        .select({ id: tasks.id })
        .from(tasks)
        .where(
          or(
            and(eq(tasks.state, 'READY'), isNotNull(tasks.assignedGroup)),
            and(eq(tasks.state, 'REVIEW'), ne(tasks.gate, 'none'), eq(tasks.gateStatus, 'pending')),
          ),
        )
        .orderBy(asc(tasks.id))
        .all()
        .map((r) => r.id);
    },

    async dispatch(taskId, plan) {
      try {
        return immediate(db, () => {
          const current = findRow(taskId);
          const w = plan(current);
          return w ? apply(current, w).dispatch : null;
        });
      } catch (err) {
        // The key `<task>:<target>:<version>` was dispatched by another loop, or the task moved
        // under us: either way this transition has its dispatch, and this one rolled back.
        if (isUniqueViolation(err) || (err instanceof ApiError && err.code === 'precondition_failed')) return null;
        throw err;
      }
    },

    async listDispatches(f) {
      const where: SQL[] = [eq(taskDispatches.group, f.group)];
      if (f.status) where.push(eq(taskDispatches.status, f.status));
      if (f.startingAfter) where.push(gt(taskDispatches.id, f.startingAfter));
      const rows = db.orm
        .select()
        .from(taskDispatches)
        .where(and(...where))
        .orderBy(asc(taskDispatches.id))
        .limit(f.limit + 1)
        .all();
      return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
    },

    async ackDispatch(id, plan) {
      return immediate(db, () => {
        const current = db.orm.select().from(taskDispatches).where(eq(taskDispatches.id, id)).get() ?? null;
        const ack = plan(current);
        if (!current) throw new Error(`the plan for an ack of dispatch ${id} did not refuse, and there is no such dispatch`);
        if (!ack) return current;
        const acked = db.orm
          .update(taskDispatches)
          .set({ status: 'acked', ackedAt: ack.nowMs })
          .where(and(eq(taskDispatches.id, id), eq(taskDispatches.status, 'pending')))
          .returning()
          .get();
        if (!acked) throw new Error(`dispatch ${id} is not pending`);
        appendActivities(db, ack.activities, ack.nowMs);
        return acked;
      });
    },

    async record(activity, nowMs) {
      immediate(db, () => appendActivities(db, [activity], nowMs));
    },
  };
}
