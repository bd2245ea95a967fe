/**
 * The limits' tables behind the store seam (see `platform/db/seam.ts`): `limit_counters` and
 * `limit_buckets`. A take reads the matching rules' rows, decides with `planTake` and writes the
 * new counts in ONE immediate transaction (with the soft quota's audit row), so calls in every
 * process on the same database file count exactly. The SQLite store also offers the synchronous
 * {@link LimitTaker}: the call path takes just before its claim without an `await`, so nothing
 * slips between its idempotency check and its claim.
 */
import { and, asc, eq, gte, inArray } from 'drizzle-orm';
import type { ActivityInput } from '../../platform/audit/trail.js';
import { appendActivities } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { appendAlone, settled } from '../../platform/db/seam.js';
import { planRefund, planTake, type BucketRow, type CounterRow, type LimitRefusal, type LimitTicket, type PlannedTake, type RuleState } from './plan.js';
import { dayStart, type LimitRule } from './policy.js';
import { limitBuckets, limitCounters } from './schema.js';

/** One matching rule and its counters' key. */
export interface KeyedRule {
  rule: LimitRule;
  key: string;
}

/** The outcome of a take: admitted (with what to give back if the claim fails) or refused. */
export type TakeResult = { kind: 'admitted'; ticket: LimitTicket; /** Rules whose soft quota this call passed first today (audited). */ softExceeded: string[] } | LimitRefusal;

/** A stored counter row, for the operators' usage view. */
export type UsageRow = { key: string; windowStart: number; count: number; softNotifiedAt: number | null };

/** Where the limits' counters are kept. */
export interface LimitStore {
  /** Decides and counts one call of `group` at `nowMs` against `rules` (all matching), in one transaction. */
  take(group: string, rules: readonly KeyedRule[], nowMs: number): Promise<TakeResult>;
  /** Gives back what an admitted call took (its claim failed, so it never ran), in one transaction. */
  refund(ticket: LimitTicket, nowMs: number): Promise<void>;
  /** The day counters of the day starting `windowStart` (Unix ms) and later, by key. */
  usage(windowStart: number): Promise<UsageRow[]>;
  /** Appends audit rows alone (the circuit breakers' state changes). */
  appendAudit(rows: readonly ActivityInput[]): Promise<void>;
}

/** The synchronous take and refund of the call path (SQLite). */
export interface LimitTaker {
  takeNow(group: string, rules: readonly KeyedRule[], nowMs: number): TakeResult;
  refundNow(ticket: LimitTicket, nowMs: number): void;
}

/** {@link LimitStore} over SQLite, with its {@link LimitTaker}. */
export function sqliteLimitStore(db: Db, clock: Clock): LimitStore & LimitTaker {
  const c = limitCounters;
  const b = limitBuckets;
  /** The rows of `rules`, read inside the caller's transaction. */
  const states = (rules: readonly KeyedRule[], windowStart: number): RuleState[] => {
    const keys = rules.map((r) => r.key);
    const buckets = new Map(db.orm.select().from(b).where(inArray(b.key, keys)).all().map((r) => [r.key, r]));
    const days = new Map(db.orm.select().from(c).where(and(inArray(c.key, keys), eq(c.windowStart, windowStart))).all().map((r) => [r.key, r]));
    return rules.map(({ rule, key }) => ({ rule, key, bucket: buckets.get(key) ?? null, day: days.get(key) ?? null }));
  };
  const write = (buckets: BucketRow[], counters: CounterRow[]): void => {
    for (const row of buckets) db.orm.insert(b).values(row).onConflictDoUpdate({ target: b.key, set: { tokens: row.tokens, updatedAt: row.updatedAt } }).run();
    for (const row of counters) {
      db.orm
        .insert(c)
        .values(row)
        .onConflictDoUpdate({ target: [c.key, c.windowStart], set: { count: row.count, softNotifiedAt: row.softNotifiedAt } })
        .run();
    }
  };
  const takeNow = (group: string, rules: readonly KeyedRule[], nowMs: number): TakeResult => {
    if (rules.length === 0) return { kind: 'admitted', ticket: { group, windowStart: 0, rules: [] }, softExceeded: [] };
    return immediate(db, () => {
      const plan = planTake(group, states(rules, dayStart(nowMs)), nowMs);
      if (plan.kind === 'refused') return plan;
      write(plan.buckets, plan.counters);
      if (plan.audit.length > 0) appendActivities(db, plan.audit, nowMs);
      return { kind: 'admitted', ticket: plan.ticket, softExceeded: softExceededOf(plan) };
    });
  };
  const refundNow = (ticket: LimitTicket, nowMs: number): void => {
    if (ticket.rules.length === 0) return;
    immediate(db, () => {
      const planned = planRefund(ticket, states(ticket.rules, ticket.windowStart), nowMs);
      write(planned.buckets, planned.counters);
    });
  };
  return {
    takeNow,
    refundNow,
    take: (group, rules, nowMs) => settled(() => takeNow(group, rules, nowMs)),
    refund: (ticket, nowMs) => settled(() => refundNow(ticket, nowMs)),
    usage: (windowStart) => settled(() => db.orm.select().from(c).where(gte(c.windowStart, windowStart)).orderBy(asc(c.key), asc(c.windowStart)).all()),
    appendAudit: (rows) => appendAlone(db, clock, rows),
  };
}

/** The rule ids of a plan's soft quota notices. */
export function softExceededOf(plan: PlannedTake): string[] {
  return plan.audit.map((a) => String(a.detail?.['rule']));
}

/** The synchronous taker of `store` when its engine has one (SQLite), else undefined. */
export function limitTakerOf(store: LimitStore | undefined): LimitTaker | undefined {
  return store && typeof (store as Partial<LimitTaker>).takeNow === 'function' ? (store as LimitStore & LimitTaker) : undefined;
}
