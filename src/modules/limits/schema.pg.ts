import { bigint, doublePrecision, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';

/** PostgreSQL mirror of `limit_counters` (`schema.ts`): calls per rule, group and UTC day. Times are Unix ms. */
export const limitCounters = pgTable(
  'limit_counters',
  {
    key: text('key').notNull(),
    windowStart: bigint('window_start', { mode: 'number' }).notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    softNotifiedAt: bigint('soft_notified_at', { mode: 'number' }),
  },
  (t) => [primaryKey({ columns: [t.key, t.windowStart] })],
);

/** PostgreSQL mirror of `limit_buckets` (`schema.ts`): token buckets. Times are Unix ms. */
export const limitBuckets = pgTable('limit_buckets', {
  key: text('key').primaryKey(),
  tokens: doublePrecision('tokens').notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});
