/**
 * The kernel's store on PostgreSQL: {@link pgTaskStore}, the {@link TaskStore} that several broker
 * processes (replicas) serve from one database, with drizzle's query builder over the `pg-core`
 * mirror of the kernel's tables (`schema.pg.ts`).
 *
 * Every write is one READ COMMITTED transaction that applies the change and appends its audit rows
 * (`appendActivitiesPg`, whose advisory lock is always the last lock taken), or changes nothing and
 * rejects. A read-modify-write reads its row with `SELECT … FOR UPDATE` and hands it to the
 * service's pure plan (If-Match, the state machine, separation of powers), so a concurrent writer
 * on another replica waits and then plans on the row this one wrote; the versioned update
 * (`version` = the version read) stays as a second guard. Dispatch happens once across replicas:
 * the dispatch loop locks its task with `FOR UPDATE SKIP LOCKED` (another replica's loop, holding
 * it, is passed by, and finds the task moved on when it comes back), and `UNIQUE(dispatch_key)`
 * refuses a second dispatch of one transition whatever wrote the first.
 */
import { and, asc, eq, gt, isNotNull, ne, or, type SQL } from 'drizzle-orm';
import type { Activity } from '../../platform/audit/trail.js';
import { appendActivitiesPg } from '../../platform/audit/trail.pg.js';
import { govActivities } from '../../platform/audit/schema.pg.js';
import { driverError, failClosedPg, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent } from '../../platform/idempotency.js';
import type { DispatchRow, TaskRow } from './model.js';
import { taskDispatches, taskGateDecisions, tasks } from './schema.pg.js';
import type { TaskStore, TaskWrite, TaskWritten } from './store.js';

/** How often a creation is tried when a concurrent creation with the same idempotency key commits first. */
const CREATE_ATTEMPTS = 3;

/**
 * The {@link TaskStore} over one PostgreSQL database; see the module note. Reads and writes that
 * meet a database that is not there reject with ApiError 503 `service_unavailable`; a write whose
 * audit rows cannot be appended rejects with 503 `audit_unavailable`; either way nothing is written.
 */
export function pgTaskStore(db: PgDb): TaskStore {
  const orm = db.orm;
  // drizzle wraps a statement's error with the statement's text and parameters; the store rejects
  // with the driver's error (its SQLSTATE `code`), as the SQLite store rejects with SQLite's.
  const failClosed = <T>(fn: () => Promise<T>): Promise<T> =>
    failClosedPg(fn, db.label).catch((err: unknown) => {
      throw driverError(err);
    });
  const inTx = <T>(fn: (tx: PgTx) => Promise<T>): Promise<T> => failClosed(() => orm.transaction(fn, { isolationLevel: 'read committed' }));

  const taskRow = async (tx: PgTx, id: string, lock?: 'update' | 'share'): Promise<TaskRow | null> => {
    const q = tx.select().from(tasks).where(eq(tasks.id, id));
    const [row] = lock ? await q.for(lock) : await q;
    return row ?? null;
  };

  /** Writes `w` in `tx`, against `current` (the task read, locked, if any). */
  const apply = async (tx: PgTx, current: TaskRow | null, w: TaskWrite): Promise<TaskWritten> => {
    const inserted: TaskRow[] = [];
    for (const values of w.insert ?? []) inserted.push((await tx.insert(tasks).values(values).returning())[0]!);
    let task = current;
    if (w.patch) {
      if (!current) throw new Error('a task change needs the task it changes');
      [task = null] = await tx
        .update(tasks)
        .set({ ...w.patch, version: current.version + 1, updatedAt: w.nowMs })
        .where(and(eq(tasks.id, current.id), eq(tasks.version, current.version)))
        .returning();
      if (!task) throw new ApiError('precondition_failed', `Task ${current.id} changed while this request ran; read it again and retry.`);
    }
    if (w.gateDecision) await tx.insert(taskGateDecisions).values(w.gateDecision);
    const dispatch = w.dispatch ? (await tx.insert(taskDispatches).values(w.dispatch).returning())[0]! : null;
    await appendActivitiesPg(tx, w.activities, w.nowMs);
    const answer = task ?? inserted[0];
    if (!answer) throw new Error('a task write must change or insert a task');
    return { task: answer, inserted, dispatch };
  };

  return {
    find(id) {
      return failClosed(async () => {
        const [row] = await orm.select().from(tasks).where(eq(tasks.id, id));
        return row ?? null;
      });
    },

    list(f) {
      return failClosed(async () => {
        const where: SQL[] = [];
        if (f.state) where.push(eq(tasks.state, f.state));
        if (f.group) where.push(eq(tasks.assignedGroup, f.group));
        if (f.type) where.push(eq(tasks.type, f.type));
        if (f.startingAfter) where.push(gt(tasks.id, f.startingAfter));
        const rows = await orm
          .select()
          .from(tasks)
          .where(and(...where))
          .orderBy(asc(tasks.id))
          .limit(f.limit + 1);
        return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
      });
    },

    gateDecisions(taskId) {
      return failClosed(() => orm.select().from(taskGateDecisions).where(eq(taskGateDecisions.taskId, taskId)).orderBy(asc(taskGateDecisions.id)));
    },

    dispatchesOf(taskId) {
      return failClosed(() => orm.select().from(taskDispatches).where(eq(taskDispatches.taskId, taskId)).orderBy(asc(taskDispatches.id)));
    },

    activity(taskId, limit = 1000) {
      return failClosed(async () => {
        const rows = await orm.select().from(govActivities).where(eq(govActivities.subject, taskId)).orderBy(asc(govActivities.seq)).limit(limit);
        return rows.map((r): Activity => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
      });
    },

    async create(actor, idem, parentId, plan) {
      // Two replicas creating with one key at once both find no prior task; the second insert then
      // waits for the first's commit and violates `tasks_idempotency_idx`. Tried again, it finds
      // that task and answers it as a replay (or 422 for another body), as one process would.
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await inTx(async (tx) => {
            const [prior] = idem
              ? await tx
                  .select()
                  .from(tasks)
                  .where(and(eq(tasks.createdBy, actor), eq(tasks.idempotencyKey, idem.key)))
              : [];
            // The parent is read FOR SHARE: it cannot change under the plan that checked it.
            const parent = prior || parentId === undefined ? null : await taskRow(tx, parentId, 'share');
            const { value, replayed } = idempotent<{ task: TaskRow } | { write: TaskWrite }>(
              idem,
              () => prior && { value: { task: prior }, requestHash: prior.requestHash, id: prior.id },
              () => ({ write: plan(parent) }),
              (p) => `task ${p.id}`,
            );
            const task = 'task' in value ? value.task : (await apply(tx, null, value.write)).task;
            return { task, replayed };
          });
        } catch (err) {
          if (attempt < CREATE_ATTEMPTS && isUniqueViolation(err, 'tasks_idempotency_idx')) continue;
          throw err;
        }
      }
    },

    change(id, plan) {
      return inTx(async (tx) => {
        const current = await taskRow(tx, id, 'update');
        const w = plan(current);
        if (w) return apply(tx, current, w);
        if (!current) throw new Error(`the plan for a change of task ${id} neither refused nor wrote, and there is no such task`);
        return { task: current, inserted: [], dispatch: null };
      });
    },

    dispatchCandidates() {
      return failClosed(async () => {
        const rows = await orm
          .select({ id: tasks.id })
          .from(tasks)
          .where(
            or(
              and(eq(tasks.state, 'READY'), isNotNull(tasks.assignedGroup)),
              and(eq(tasks.state, 'REVIEW'), ne(tasks.gate, 'none'), eq(tasks.gateStatus, 'pending')),
            ),
          )
          .orderBy(asc(tasks.id));
        return rows.map((r) => r.id);
      });
    },

    async dispatch(taskId, plan) {
      try {
        return await inTx(async (tx) => {
          // Another replica's loop (or a hand move) holding the task is passed by: it is moving it.
          const [current] = await tx.select().from(tasks).where(eq(tasks.id, taskId)).for('update', { skipLocked: true });
          if (!current) return null;
          const w = plan(current);
          return w ? (await apply(tx, current, w)).dispatch : null;
        });
      } catch (err) {
        // The key `<task>:<target>:<version>` was dispatched by another writer, or the task moved
        // under us: either way this transition has its dispatch, and this one rolled back.
        if (isUniqueViolation(err) || (err instanceof ApiError && err.code === 'precondition_failed')) return null;
        throw err;
      }
    },

    listDispatches(f) {
      return failClosed(async () => {
        const where: SQL[] = [eq(taskDispatches.group, f.group)];
        if (f.status) where.push(eq(taskDispatches.status, f.status));
        if (f.startingAfter) where.push(gt(taskDispatches.id, f.startingAfter));
        const rows = await orm
          .select()
          .from(taskDispatches)
          .where(and(...where))
          .orderBy(asc(taskDispatches.id))
          .limit(f.limit + 1);
        return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
      });
    },

    ackDispatch(id, plan) {
      return inTx(async (tx) => {
        const [current = null] = await tx.select().from(taskDispatches).where(eq(taskDispatches.id, id)).for('update');
        const ack = plan(current);
        if (!current) throw new Error(`the plan for an ack of dispatch ${id} did not refuse, and there is no such dispatch`);
        if (!ack) return current;
        const [acked]: DispatchRow[] = await tx
          .update(taskDispatches)
          .set({ status: 'acked', ackedAt: ack.nowMs })
          .where(and(eq(taskDispatches.id, id), eq(taskDispatches.status, 'pending')))
          .returning();
        if (!acked) throw new Error(`dispatch ${id} is not pending`);
        await appendActivitiesPg(tx, ack.activities, ack.nowMs);
        return acked;
      });
    },

    async record(activity, nowMs) {
      await inTx((tx) => appendActivitiesPg(tx, [activity], nowMs));
    },
  };
}

/** True for PostgreSQL's unique violation (SQLSTATE 23505), of `constraint` when given, however drizzle wrapped it. */
function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = driverError(err) as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
