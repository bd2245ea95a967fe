/**
 * The held calls' tables behind the store seam (see `platform/db/seam.ts`): `call_holds` (the
 * exact request and its digest), `call_approvals` (the signed approvals) and the held call's own
 * `ext_calls` row, whose status goes `awaiting_approval` → `running` (the second approval claims
 * it for this process, and the call path's outcome write ends it) or → `expired`. The step-3 read
 * of the call path sees that row, so a retry of the same key replays the stored answer and the
 * same key with another body is refused (422 `idempotency_key_reused`).
 */
import { and, asc, eq, lte } from 'drizzle-orm';
import type { ActivityInput } from '../../../platform/audit/trail.js';
import type { Clock } from '../../../platform/clock.js';
import type { Db } from '../../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../../platform/db/seam.js';
import { callApprovals, callHolds, extCalls } from '../schema.js';
import { DuplicateClaim, type CallRow, type NewCall } from '../store.js';

/** A `call_holds` row. Times are Unix ms. */
export type HoldRow = typeof callHolds.$inferSelect;
/** A `call_approvals` row. */
export type CallApprovalRow = typeof callApprovals.$inferSelect;
/** An approval to record; its id is assigned and its `createdAt` is the transaction's now. */
export type NewCallApproval = Omit<CallApprovalRow, 'id' | 'createdAt'>;

/** A held call: its `ext_calls` row, the held request and the approvals recorded, oldest first. */
export interface HeldCall {
  call: CallRow;
  hold: HoldRow;
  approvals: CallApprovalRow[];
}

/** What a change of a held call writes: one more approval, and/or columns of its `ext_calls` row. */
export interface HoldChange {
  approval?: NewCallApproval;
  call?: Partial<Pick<CallRow, 'status' | 'instanceId' | 'httpStatus' | 'response' | 'finishedAt' | 'receipt'>>;
}

/** The held call row to insert: a claim's columns plus the stored 202 answer. */
export type NewHeldCall = NewCall & { httpStatus: number; response: string };

/** Where held calls and their approvals are kept. */
export interface CallHoldStore {
  /** The held call of this key with its approvals, or null (no such call, or one never held). */
  get(group: string, requestId: string): Promise<HeldCall | null>;
  /**
   * Holds a call in one transaction: inserts its `ext_calls` row (status `awaiting_approval`), its
   * `call_holds` row (replacing a stale one of a purged key) and the audit row.
   * @throws (rejects) DuplicateClaim when the key is taken; ApiError 503 `audit_unavailable`.
   */
  hold(call: NewHeldCall, hold: HoldRow, audit: ActivityInput): Promise<void>;
  /** Changes one held call in one transaction: reads it (null when there is none), lets `plan` decide, writes its {@link HoldChange} and audit rows. */
  change<T>(group: string, requestId: string, plan: Plan<HeldCall | null, HoldChange, T>): Promise<T>;
  /** Keys of calls still `awaiting_approval` whose hold expired at `nowMs`, at most `limit`. */
  due(nowMs: number, limit: number): Promise<{ group: string; requestId: string }[]>;
  /** Appends one audit row about a held call (a refused approval), in a transaction of its own. */
  record(row: ActivityInput): Promise<void>;
}

/** {@link CallHoldStore} over SQLite. */
export function sqliteCallHoldStore(db: Db, clock: Clock): CallHoldStore {
  const read = (group: string, requestId: string): HeldCall | null => {
    const call = db.orm.select().from(extCalls).where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId))).get() as CallRow | undefined;
    const hold = db.orm.select().from(callHolds).where(and(eq(callHolds.group, group), eq(callHolds.requestId, requestId))).get();
    if (!call || !hold) return null;
    const approvals = db.orm.select().from(callApprovals).where(and(eq(callApprovals.group, group), eq(callApprovals.requestId, requestId))).orderBy(asc(callApprovals.id)).all();
    return { call, hold, approvals };
  };
  return {
    get: (group, requestId) => settled(() => read(group, requestId)),
    hold: (call, hold, audit) =>
      runPlan(
        db,
        clock,
        () => db.orm.select({ status: extCalls.status }).from(extCalls).where(and(eq(extCalls.group, call.group), eq(extCalls.requestId, call.requestId))).get(),
        (existing) => {
          if (existing) throw new DuplicateClaim(`the key ${call.requestId} of ${call.group} is taken`);
          return { write: true, audit: [audit], result: undefined };
        },
        () => {
          const key = and(eq(callHolds.group, call.group), eq(callHolds.requestId, call.requestId));
          db.orm.delete(callHolds).where(key).run();
          db.orm.delete(callApprovals).where(and(eq(callApprovals.group, call.group), eq(callApprovals.requestId, call.requestId))).run();
          db.orm.insert(extCalls).values({ ...call, status: 'awaiting_approval' }).run();
          db.orm.insert(callHolds).values(hold).run();
        },
      ),
    change: (group, requestId, plan) =>
      runPlan(db, clock, () => read(group, requestId), plan, (write, _current, now) => {
        if (write.approval) db.orm.insert(callApprovals).values({ ...write.approval, createdAt: now }).run();
        if (write.call) db.orm.update(extCalls).set(write.call).where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId), eq(extCalls.status, 'awaiting_approval'))).run();
      }),
    due: (now, limit) =>
      settled(() =>
        db.orm
          .select({ group: callHolds.group, requestId: callHolds.requestId })
          .from(callHolds)
          .innerJoin(extCalls, and(eq(extCalls.group, callHolds.group), eq(extCalls.requestId, callHolds.requestId)))
          .where(and(lte(callHolds.expiresAt, now), eq(extCalls.status, 'awaiting_approval')))
          .limit(limit)
          .all(),
      ),
    record: (row) => runPlan(db, clock, () => null, () => ({ audit: [row], result: undefined }), () => {}),
  };
}
