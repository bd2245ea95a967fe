/**
 * The limits step's decision over the stored counters, pure and shared by both engines: each
 * store reads the rows of the matching rules inside one transaction (locked), calls
 * {@link planTake}, and writes what it returns in the same transaction, so concurrent calls in
 * any process count exactly.
 *
 * Hard quotas are checked first (a call over its day's quota is `quota_exceeded` whatever its
 * rate), then token buckets (`rate_limited`). A refused call consumes nothing; an admitted one
 * takes a token from every matching bucket and counts once in every matching day counter.
 */
import type { ActivityInput } from '../../platform/audit/trail.js';
import { DAY_MS, dayStart, type LimitRule } from './policy.js';

/** A token bucket's stored state: tokens left (fractional) as of `updatedAt` (Unix ms). */
export interface BucketRow {
  key: string;
  tokens: number;
  updatedAt: number;
}

/** A day counter's stored state: calls counted in the UTC day starting `windowStart` (Unix ms), and when the soft quota's notice was audited. */
export interface CounterRow {
  key: string;
  windowStart: number;
  count: number;
  softNotifiedAt: number | null;
}

/** One matching rule with its counters' key (`counterKey`) and stored rows (null when none yet). */
export interface RuleState {
  rule: LimitRule;
  key: string;
  bucket: BucketRow | null;
  day: CounterRow | null;
}

/** A refusal of the limits step: which rule, its limit, and `Retry-After` in whole seconds. */
export interface LimitRefusal {
  kind: 'refused';
  code: 'rate_limited' | 'quota_exceeded';
  rule: LimitRule;
  limit: number;
  retryAfterS: number;
}

/** What an admitted call took, to give back when its claim fails ({@link planRefund}). */
export interface LimitTicket {
  group: string;
  windowStart: number;
  rules: { rule: LimitRule; key: string }[];
}

/** An admitted call: the rows to write, the audit rows (soft quota notices), the ticket. */
export interface PlannedTake {
  kind: 'admitted';
  buckets: BucketRow[];
  counters: CounterRow[];
  audit: ActivityInput[];
  ticket: LimitTicket;
}

/** Tokens a bucket of `perMinute` holds at `nowMs`, refilled continuously since its row (full when there is none). */
function tokensAt(perMinute: number, row: BucketRow | null, nowMs: number): number {
  if (!row) return perMinute;
  const elapsed = Math.max(0, nowMs - row.updatedAt);
  return Math.min(perMinute, row.tokens + (elapsed * perMinute) / 60_000);
}

/** Calls counted in the day of `nowMs` (0 when the stored row is of an earlier day). */
const countToday = (row: CounterRow | null, today: number): number => (row && row.windowStart === today ? row.count : 0);

/**
 * Decides the limits step for one call of `group` at `nowMs` over the matching rules' rows.
 * @returns a refusal (nothing to write) or what to write; never throws.
 */
export function planTake(group: string, states: readonly RuleState[], nowMs: number): LimitRefusal | PlannedTake {
  const today = dayStart(nowMs);
  for (const s of states) {
    const hard = s.rule.daily_hard;
    if (hard !== undefined && countToday(s.day, today) >= hard) {
      return { kind: 'refused', code: 'quota_exceeded', rule: s.rule, limit: hard, retryAfterS: Math.max(1, Math.ceil((today + DAY_MS - nowMs) / 1000)) };
    }
  }
  for (const s of states) {
    const perMinute = s.rule.per_minute;
    if (perMinute === undefined) continue;
    const tokens = tokensAt(perMinute, s.bucket, nowMs);
    if (tokens < 1) {
      const waitMs = ((1 - tokens) * 60_000) / perMinute;
      return { kind: 'refused', code: 'rate_limited', rule: s.rule, limit: perMinute, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
    }
  }
  const out: PlannedTake = { kind: 'admitted', buckets: [], counters: [], audit: [], ticket: { group, windowStart: today, rules: [] } };
  for (const s of states) {
    const { rule, key } = s;
    out.ticket.rules.push({ rule, key });
    if (rule.per_minute !== undefined) out.buckets.push({ key, tokens: tokensAt(rule.per_minute, s.bucket, nowMs) - 1, updatedAt: nowMs });
    if (rule.daily_soft === undefined && rule.daily_hard === undefined) continue;
    const count = countToday(s.day, today) + 1;
    let softNotifiedAt = s.day && s.day.windowStart === today ? s.day.softNotifiedAt : null;
    if (rule.daily_soft !== undefined && count > rule.daily_soft && softNotifiedAt === null) {
      softNotifiedAt = nowMs;
      out.audit.push({
        actor: 'system',
        kind: 'quota.soft_exceeded',
        subject: `limit:${key}`,
        detail: { rule: rule.id, group, window_start: new Date(today).toISOString(), count, daily_soft: rule.daily_soft, daily_hard: rule.daily_hard ?? null },
      });
    }
    out.counters.push({ key, windowStart: today, count, softNotifiedAt });
  }
  return out;
}

/**
 * What giving back `ticket` writes over the current rows: one call less in each day counter of
 * the ticket's day (not below 0; an earlier day's counter is left alone), one token more in each
 * bucket (not above its size).
 */
export function planRefund(ticket: LimitTicket, states: readonly RuleState[], nowMs: number): { buckets: BucketRow[]; counters: CounterRow[] } {
  const buckets: BucketRow[] = [];
  const counters: CounterRow[] = [];
  for (const s of states) {
    const perMinute = s.rule.per_minute;
    if (perMinute !== undefined && s.bucket) buckets.push({ key: s.key, tokens: Math.min(perMinute, tokensAt(perMinute, s.bucket, nowMs) + 1), updatedAt: Math.max(nowMs, s.bucket.updatedAt) });
    if (s.day && s.day.windowStart === ticket.windowStart && s.day.count > 0) counters.push({ ...s.day, count: s.day.count - 1 });
  }
  return { buckets, counters };
}
