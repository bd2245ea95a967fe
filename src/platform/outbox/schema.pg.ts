import { bigint, pgTable, text } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `outbox_cursors` (`schema.ts`): each outbox consumer's last handled audit
 * `seq`. Replicas serialise a consumer's batches by locking its row (`FOR UPDATE SKIP LOCKED`).
 */
export const outboxCursors = pgTable('outbox_cursors', {
  consumer: text('consumer').primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});
