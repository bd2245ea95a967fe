/**
 * {@link RunStore} on PostgreSQL: the same `runs` rows and audit rows as the SQLite store
 * (`store.ts`), for several broker replicas on one database. Every write is one READ COMMITTED
 * transaction that changes the run and appends its audit rows (`appendActivitiesPg`, which takes
 * the audit lock last), or changes nothing and rejects.
 *
 * A claim inserts with `ON CONFLICT DO NOTHING`: of two replicas claiming the same dispatch, the
 * second waits for the first's commit on the unique `dispatch_key` and then inserts nothing, so it
 * answers null and starts no process (exactly once across replicas). An update is one conditional
 * `UPDATE … WHERE status IN (…)`: two paths ending the same run (a finish and a cancel, on two
 * replicas) are decided by the row lock, and the second finds it no longer in `from`.
 */
import { and, asc, count, eq, gt, inArray, type SQL } from 'drizzle-orm';
import { appendActivitiesPg } from '../../platform/audit/trail.pg.js';
import { failClosedPg, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { runs } from './schema.pg.js';
import type { RunStore } from './store.js';

/** The {@link RunStore} over one PostgreSQL database. Rejects with ApiError 503 `service_unavailable` when the database cannot be reached, 503 `audit_unavailable` when the audit rows cannot be written (nothing written). */
export function pgRunStore(pg: PgDb): RunStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  const inTx = <T>(fn: (tx: PgTx) => Promise<T>): Promise<T> => failClosedPg(() => pg.orm.transaction(fn, { isolationLevel: 'read committed' }), pg.label);
  return {
    claim: (run, activity) =>
      inTx(async (tx) => {
        // Only the dispatch key answers null (as on SQLite); a duplicate run id is an error.
        const [row] = await tx.insert(runs).values(run).onConflictDoNothing({ target: runs.dispatchKey }).returning();
        if (!row) return null;
        await appendActivitiesPg(tx, [activity], run.createdAt);
        return row;
      }),

    update: (id, from, patch, activities, nowMs) =>
      inTx(async (tx) => {
        const [row] = await tx
          .update(runs)
          .set(patch)
          .where(and(eq(runs.id, id), inArray(runs.status, [...from])))
          .returning();
        if (!row) return null;
        if (activities.length > 0) await appendActivitiesPg(tx, activities, nowMs);
        return row;
      }),

    find: (id) => read(async () => (await pg.orm.select().from(runs).where(eq(runs.id, id)))[0] ?? null),

    withStatus: (statuses) => read(() => pg.orm.select().from(runs).where(inArray(runs.status, [...statuses])).orderBy(asc(runs.id))),

    ofTask: (taskId) => read(() => pg.orm.select().from(runs).where(eq(runs.taskId, taskId)).orderBy(asc(runs.id))),

    claimedKeys: (keys) =>
      read(async () => {
        if (keys.length === 0) return new Set<string>();
        const rows = await pg.orm.select({ k: runs.dispatchKey }).from(runs).where(inArray(runs.dispatchKey, keys));
        return new Set(rows.map((r) => r.k));
      }),

    list: (f) =>
      read(async () => {
        const where: SQL[] = [];
        if (f.status) where.push(eq(runs.status, f.status));
        if (f.group) where.push(eq(runs.group, f.group));
        if (f.taskId) where.push(eq(runs.taskId, f.taskId));
        if (f.startingAfter) where.push(gt(runs.id, f.startingAfter));
        const rows = await pg.orm.select().from(runs).where(and(...where)).orderBy(asc(runs.id)).limit(f.limit + 1);
        return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
      }),

    counts: () =>
      read(async () => {
        const out: Record<string, number> = {};
        for (const r of await pg.orm.select({ s: runs.status, n: count() }).from(runs).groupBy(runs.status)) out[r.s] = Number(r.n);
        return out;
      }),
  };
}
