import { sql } from 'drizzle-orm';
import { bigint, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

/** PostgreSQL mirror of `kill_switches` (`schema.ts`): operators' reversible stops. Times are Unix ms. */
export const killSwitches = pgTable(
  'kill_switches',
  {
    id: text('id').primaryKey(),
    scope: text('scope').notNull(),
    target: text('target'),
    reason: text('reason').notNull(),
    setBy: text('set_by').notNull(),
    setAt: bigint('set_at', { mode: 'number' }).notNull(),
    clearedBy: text('cleared_by'),
    clearedAt: bigint('cleared_at', { mode: 'number' }),
    clearReason: text('clear_reason'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('kill_switches_active_idx').on(t.clearedAt),
    uniqueIndex('kill_switches_idempotency_idx').on(t.setBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);
