/**
 * Instance leases on PostgreSQL (`broker_instances`, `schema.pg.ts`): the same lease as on SQLite
 * (`lease.ts`: a row renewed every third of `BROKER_LEASE_TTL_MS`, deleted on a graceful stop),
 * but PostgreSQL is not single-server: every replica holds a lease of its own at once, and crash
 * recovery (`PgCallStore.endInterrupted`) takes over only the calls of leases that expired.
 * Drizzle's query builder over the `pg-core` mirror; every function is one statement (or one
 * transaction), so a replica never sees another's half-written lease.
 */
import os from 'node:os';
import { and, eq, gt, ne } from 'drizzle-orm';
import { failClosedPg, type PgDb } from '../db/pg.js';
import { mayBeAlive, type InstanceRow, type LeaseHolder } from './lease.js';
import { brokerInstances } from './schema.pg.js';

/**
 * Takes a lease for `me` (inserts its row, or extends it when it exists). Leases of processes
 * certainly gone (on this host, their pid absent: `mayBeAlive`) end now, so recovery takes over
 * their calls at once; other replicas' live leases are left alone.
 * @param now Unix ms.
 * @throws (rejects) ApiError 503 `service_unavailable` when the database cannot be written.
 */
export function acquireLeasePg(db: PgDb, me: LeaseHolder, now: number): Promise<InstanceRow> {
  return failClosedPg(() =>
    db.orm.transaction(async (tx) => {
      const t = brokerInstances;
      const others = await tx.select().from(t).where(and(gt(t.leaseUntil, now), ne(t.id, me.id)));
      for (const gone of others.filter((r) => !mayBeAlive(r))) await tx.update(t).set({ leaseUntil: now }).where(eq(t.id, gone.id));
      const row: InstanceRow = { id: me.id, pid: process.pid, host: os.hostname(), url: null, startedAt: now, leaseUntil: now + me.ttlMs };
      await tx.insert(t).values(row).onConflictDoUpdate({ target: t.id, set: { leaseUntil: row.leaseUntil } });
      return row;
    }),
  );
}

/**
 * Extends `me`'s lease to `now + ttlMs`.
 * @returns false when its row is gone: the lease expired and another replica's recovery took over
 *   its calls (this process was stalled longer than the TTL).
 * @throws (rejects) ApiError 503 `service_unavailable` when the write fails.
 */
export async function renewLeasePg(db: PgDb, me: LeaseHolder, now: number): Promise<boolean> {
  const t = brokerInstances;
  const rows = await failClosedPg(() => db.orm.update(t).set({ leaseUntil: now + me.ttlMs }).where(eq(t.id, me.id)).returning({ id: t.id }));
  return rows.length === 1;
}

/** Records the origin the instance listens on. @throws (rejects) 503 `service_unavailable`. */
export async function setLeaseUrlPg(db: PgDb, id: string, url: string): Promise<void> {
  await failClosedPg(() => db.orm.update(brokerInstances).set({ url }).where(eq(brokerInstances.id, id)));
}

/** Deletes the instance's row (graceful stop). @throws (rejects) 503 `service_unavailable`. */
export async function releaseLeasePg(db: PgDb, id: string): Promise<void> {
  await failClosedPg(() => db.orm.delete(brokerInstances).where(eq(brokerInstances.id, id)));
}

/**
 * The live leases other than `exceptId` (lease_until > `now`), oldest first.
 * @param now Unix ms.
 */
export async function liveInstancesPg(db: PgDb, now: number, exceptId: string | null = null): Promise<InstanceRow[]> {
  const t = brokerInstances;
  const rows = await failClosedPg(() =>
    db.orm
      .select()
      .from(t)
      .where(exceptId === null ? gt(t.leaseUntil, now) : and(gt(t.leaseUntil, now), ne(t.id, exceptId)))
      .orderBy(t.startedAt, t.id),
  );
  return rows.filter(mayBeAlive);
}
