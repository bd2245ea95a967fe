/**
 * {@link GrantRequestStore} on PostgreSQL: the same table, rows and plans as the SQLite store
 * (`store.ts`), for several broker replicas on one database.
 *
 * A creation takes the group's keyed lock (`PG_KEYED_LOCKS.grantRequestGroup`) before it reads
 * what its plan decides on: the prior request under the Idempotency-Key and the group's pending
 * count are partly the absence of rows, which no row lock covers, so creations for one group on
 * every replica are decided one after the other, each counting what the one before committed, and
 * the group's limit of pending requests holds across replicas; `grant_requests_idempotency_idx`
 * stays as the last line of defence (a duplicate makes `runPlanPg` run the plan again, which then
 * answers the replay or the 422). A change reads the request `FOR UPDATE`, so two decisions on one
 * request (an approval and a denial on two replicas) are made one after the other, the second from
 * what the first committed. The expiry reads the pending requests past their deadline `FOR UPDATE`.
 */
import { and, asc, count, eq, gt, inArray, lte, or, type SQL } from 'drizzle-orm';
import { govActivities } from '../../platform/audit/schema.pg.js';
import type { Activity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { failClosedPg, keyedAdvisoryXactLock, PG_KEYED_LOCKS, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { runPlanPg } from '../../platform/db/seam.js';
import { grantRequests } from './schema.pg.js';
import type { GrantRequestRow, GrantRequestStatus, GrantRequestStore } from './store.js';

const r = grantRequests;

/** {@link GrantRequestStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgGrantRequestStore(pg: PgDb, clock: Clock): GrantRequestStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  const one = async (tx: PgTx | PgDb['orm'], id: string, lock: boolean): Promise<GrantRequestRow | null> => {
    const q = tx.select().from(r).where(eq(r.id, id));
    return (lock ? await q.for('update') : await q)[0] ?? null;
  };
  return {
    get: (id) => read(() => one(pg.orm, id, false)),
    list: (q, now) =>
      read(async () => {
        const where: (SQL | undefined)[] = [q.group ? eq(r.group, q.group) : undefined, q.status ? statusCondition(q.status, now) : undefined, q.after ? gt(r.id, q.after) : undefined];
        const rows = await pg.orm.select().from(r).where(and(...where)).orderBy(asc(r.id)).limit(q.limit + 1);
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    timeline: (id) =>
      read(async () => {
        const rows = await pg.orm.select().from(govActivities).where(eq(govActivities.subject, id)).orderBy(asc(govActivities.seq)).limit(1000);
        return rows.map((a): Activity => ({ ...a, detail: JSON.parse(a.detail) as Record<string, unknown> }));
      }),
    create: (group, key, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx) => {
            await tx.execute(keyedAdvisoryXactLock(PG_KEYED_LOCKS.grantRequestGroup, group));
            const now = clock.now();
            const prior = key === null ? null : ((await tx.select().from(r).where(and(eq(r.group, group), eq(r.idempotencyKey, key))))[0] ?? null);
            const [pending] = await tx.select({ n: count() }).from(r).where(and(eq(r.group, group), statusCondition('pending', now)));
            return { prior, pending: Number(pending?.n ?? 0) };
          },
          apply: async (tx, row) => {
            await tx.insert(r).values(row);
          },
        },
        plan,
      ),
    change: (id, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: (tx) => one(tx, id, true),
          apply: async (tx, set) => {
            await tx.update(r).set(set).where(eq(r.id, id));
          },
        },
        plan,
      ),
    expireDue: (limit, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          // Locked in deadline order (as every expiry locks them), re-checked by PostgreSQL after a
          // wait: a request another replica decided or expired meanwhile is no longer read.
          read: (tx) =>
            tx
              .select()
              .from(r)
              .where(and(eq(r.status, 'pending'), lte(r.pendingExpiresAt, clock.now())))
              .orderBy(asc(r.pendingExpiresAt), asc(r.id))
              .limit(limit)
              .for('update'),
          apply: async (tx, write) => {
            if (write.ids.length > 0) await tx.update(r).set(write.set).where(and(inArray(r.id, [...write.ids]), eq(r.status, 'pending')));
          },
        },
        plan,
      ),
    // Nothing of the request is written, so no row lock: requests are never deleted, so "it exists" cannot change under the append.
    recordRefusal: (id, row) =>
      runPlanPg(
        pg,
        clock,
        { read: async (tx) => (await tx.select({ id: r.id }).from(r).where(eq(r.id, id))).length > 0 },
        (exists) => (exists ? { audit: [row], result: true } : { result: false }),
      ),
  };
}

/** Requests whose effective status at `now` is `status`; as the SQLite store's. */
function statusCondition(status: GrantRequestStatus, now: number): SQL | undefined {
  switch (status) {
    case 'pending':
      return and(eq(r.status, 'pending'), gt(r.pendingExpiresAt, now));
    case 'expired':
      return or(eq(r.status, 'expired'), and(eq(r.status, 'pending'), lte(r.pendingExpiresAt, now)));
    default:
      return eq(r.status, status);
  }
}
