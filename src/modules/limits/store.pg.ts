/**
 * {@link LimitStore} on PostgreSQL: the same plan as SQLite (`plan.ts`) in one READ COMMITTED
 * transaction per take (`runPlanPg`). The matching rows are read `FOR UPDATE` in key order, so
 * concurrent takes of the same rule and group on any replica queue behind each other and count
 * exactly; a row missing for both is INSERTed by both and the second fails its primary key
 * (23505), which makes `runPlanPg` run the whole take again, now reading the row the first wrote.
 */
import { and, asc, eq, gte, inArray } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import type { PgDb, PgTx } from '../../platform/db/pg.js';
import { appendAlonePg, runPlanPg } from '../../platform/db/seam.js';
import { planRefund, planTake, type BucketRow, type CounterRow, type RuleState } from './plan.js';
import { dayStart } from './policy.js';
import { limitBuckets, limitCounters } from './schema.pg.js';
import { softExceededOf, type KeyedRule, type LimitStore, type TakeResult } from './store.js';

/** {@link LimitStore} over PostgreSQL. */
export function pgLimitStore(pg: PgDb, clock: Clock): LimitStore {
  const c = limitCounters;
  const b = limitBuckets;
  /** The rows of `rules`, locked in key order. */
  const read = async (tx: PgTx, rules: readonly KeyedRule[], windowStart: number): Promise<RuleState[]> => {
    const keys = [...new Set(rules.map((r) => r.key))].sort();
    const buckets = new Map((await tx.select().from(b).where(inArray(b.key, keys)).orderBy(asc(b.key)).for('update')).map((r) => [r.key, r]));
    const days = new Map((await tx.select().from(c).where(and(inArray(c.key, keys), eq(c.windowStart, windowStart))).orderBy(asc(c.key)).for('update')).map((r) => [r.key, r]));
    return rules.map(({ rule, key }) => ({ rule, key, bucket: buckets.get(key) ?? null, day: days.get(key) ?? null }));
  };
  /** Updates the rows that existed, inserts the others (a concurrent insert fails 23505: the take runs again). */
  const write = async (tx: PgTx, current: RuleState[], buckets: BucketRow[], counters: CounterRow[]): Promise<void> => {
    const had = new Map(current.map((s) => [s.key, s]));
    for (const row of buckets) {
      if (had.get(row.key)?.bucket) await tx.update(b).set({ tokens: row.tokens, updatedAt: row.updatedAt }).where(eq(b.key, row.key));
      else await tx.insert(b).values(row);
    }
    for (const row of counters) {
      if (had.get(row.key)?.day) await tx.update(c).set({ count: row.count, softNotifiedAt: row.softNotifiedAt }).where(and(eq(c.key, row.key), eq(c.windowStart, row.windowStart)));
      else await tx.insert(c).values(row);
    }
  };
  return {
    async take(group, rules, nowMs): Promise<TakeResult> {
      if (rules.length === 0) return { kind: 'admitted', ticket: { group, windowStart: 0, rules: [] }, softExceeded: [] };
      return runPlanPg<RuleState[], { buckets: BucketRow[]; counters: CounterRow[] }, TakeResult>(
        pg,
        clock,
        { read: (tx) => read(tx, rules, dayStart(nowMs)), apply: (tx, w, current) => write(tx, current, w.buckets, w.counters) },
        (current) => {
          const plan = planTake(group, current, nowMs);
          if (plan.kind === 'refused') return { result: plan };
          return { write: { buckets: plan.buckets, counters: plan.counters }, audit: plan.audit, result: { kind: 'admitted', ticket: plan.ticket, softExceeded: softExceededOf(plan) } };
        },
      );
    },
    async refund(ticket, nowMs) {
      if (ticket.rules.length === 0) return;
      await runPlanPg<RuleState[], { buckets: BucketRow[]; counters: CounterRow[] }, void>(
        pg,
        clock,
        { read: (tx) => read(tx, ticket.rules, ticket.windowStart), apply: (tx, w, current) => write(tx, current, w.buckets, w.counters) },
        (current) => ({ write: planRefund(ticket, current, nowMs), result: undefined }),
      );
    },
    usage: async (windowStart) => pg.orm.select().from(c).where(gte(c.windowStart, windowStart)).orderBy(asc(c.key), asc(c.windowStart)),
    appendAudit: (rows) => appendAlonePg(pg, clock, rows),
  };
}
