/**
 * {@link CallHoldStore} on PostgreSQL: the same tables, rows and plans as the SQLite store
 * (`store.ts`). The held call's `ext_calls` row is read `FOR UPDATE`, so two replicas recording
 * the second approval of one call at once are decided one after the other: only the first claims
 * it (`awaiting_approval` → `running`), the other sees it running.
 */
import { and, asc, eq, lte } from 'drizzle-orm';
import type { Clock } from '../../../platform/clock.js';
import type { PgDb, PgTx } from '../../../platform/db/pg.js';
import { failClosedPg } from '../../../platform/db/pg.js';
import { runPlanPg } from '../../../platform/db/seam.js';
import { callApprovals, callHolds, extCalls } from '../schema.pg.js';
import { DuplicateClaim, type CallRow } from '../store.js';
import type { CallHoldStore, HeldCall } from './store.js';

/** {@link CallHoldStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgCallHoldStore(pg: PgDb, clock: Clock): CallHoldStore {
  const read = async (tx: PgTx | PgDb['orm'], group: string, requestId: string, lock: boolean): Promise<HeldCall | null> => {
    const q = tx.select().from(extCalls).where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId)));
    const call = (lock ? await q.for('update') : await q)[0] as CallRow | undefined;
    const hold = (await tx.select().from(callHolds).where(and(eq(callHolds.group, group), eq(callHolds.requestId, requestId))))[0];
    if (!call || !hold) return null;
    const approvals = await tx.select().from(callApprovals).where(and(eq(callApprovals.group, group), eq(callApprovals.requestId, requestId))).orderBy(asc(callApprovals.id));
    return { call, hold, approvals };
  };
  return {
    get: (group, requestId) => failClosedPg(() => read(pg.orm, group, requestId, false), pg.label),
    hold: (call, hold, audit) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx) => (await tx.select({ status: extCalls.status }).from(extCalls).where(and(eq(extCalls.group, call.group), eq(extCalls.requestId, call.requestId))).for('update'))[0],
          apply: async (tx) => {
            await tx.delete(callHolds).where(and(eq(callHolds.group, call.group), eq(callHolds.requestId, call.requestId)));
            await tx.delete(callApprovals).where(and(eq(callApprovals.group, call.group), eq(callApprovals.requestId, call.requestId)));
            await tx.insert(extCalls).values({ ...call, status: 'awaiting_approval' });
            await tx.insert(callHolds).values(hold);
          },
        },
        (existing) => {
          if (existing) throw new DuplicateClaim(`the key ${call.requestId} of ${call.group} is taken`);
          return { write: true, audit: [audit], result: undefined };
        },
      ),
    change: (group, requestId, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: (tx) => read(tx, group, requestId, true),
          apply: async (tx, write, _current, now) => {
            if (write.approval) await tx.insert(callApprovals).values({ ...write.approval, createdAt: now });
            if (write.call) await tx.update(extCalls).set(write.call).where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId), eq(extCalls.status, 'awaiting_approval')));
          },
        },
        plan,
      ),
    due: (now, limit) =>
      failClosedPg(
        () =>
          pg.orm
            .select({ group: callHolds.group, requestId: callHolds.requestId })
            .from(callHolds)
            .innerJoin(extCalls, and(eq(extCalls.group, callHolds.group), eq(extCalls.requestId, callHolds.requestId)))
            .where(and(lte(callHolds.expiresAt, now), eq(extCalls.status, 'awaiting_approval')))
            .limit(limit),
        pg.label,
      ),
    record: (row) => runPlanPg(pg, clock, { read: async () => null }, () => ({ audit: [row], result: undefined })),
  };
}
