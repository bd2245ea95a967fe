import { integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * `limit_counters`: calls admitted per rule and group in one UTC day (`policies/limits.json`
 * `daily_soft`/`daily_hard`), written through `store.ts` in the transaction that admits a call.
 * `window_start` is the day's start, Unix ms; `soft_notified_at` when the soft quota's notice
 * (`quota.soft_exceeded`) was audited that day, so it is audited once per day and rule.
 */
export const limitCounters = sqliteTable(
  'limit_counters',
  {
    /** `<rule id>|<group>`. */
    key: text('key').notNull(),
    windowStart: integer('window_start').notNull(),
    count: integer('count').notNull(),
    softNotifiedAt: integer('soft_notified_at'),
  },
  (t) => [primaryKey({ columns: [t.key, t.windowStart] })],
);

/**
 * `limit_buckets`: the token bucket of each rule and group with a `per_minute` rate: tokens left
 * (fractional) as of `updated_at` (Unix ms); refilled continuously at `per_minute`/60 000 per ms.
 */
export const limitBuckets = sqliteTable('limit_buckets', {
  /** `<rule id>|<group>`. */
  key: text('key').primaryKey(),
  tokens: real('tokens').notNull(),
  updatedAt: integer('updated_at').notNull(),
});
