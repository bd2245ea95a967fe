import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `kill_switches`: an operator's reversible stop on external calls, written through `store.ts`.
 * A switch is active from `set_at` until it is cleared (`cleared_at` not null); while active,
 * every call it matches is refused with 503 `disabled_by_operator`. Times are Unix ms.
 */
export const killSwitches = sqliteTable(
  'kill_switches',
  {
    /** `ksw_<ULID>`. */
    id: text('id').primaryKey(),
    /** `all` | `group` | `provider` | `action`. */
    scope: text('scope').notNull(),
    /** The group, provider or action id the switch stops; null for `all`. */
    target: text('target'),
    reason: text('reason').notNull(),
    /** The principal that set it (`operator:<subject>`, `cli:<user>`). */
    setBy: text('set_by').notNull(),
    setAt: integer('set_at').notNull(),
    clearedBy: text('cleared_by'),
    clearedAt: integer('cleared_at'),
    clearReason: text('clear_reason'),
    /** The setting request's Idempotency-Key and the sha256 of its body (replays return this switch). */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('kill_switches_active_idx').on(t.clearedAt),
    uniqueIndex('kill_switches_idempotency_idx').on(t.setBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);
