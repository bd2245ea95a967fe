import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * `outbox_cursors`: how far each consumer of the outbox has read. The outbox is the audit trail
 * itself (`gov_activities`, written in the transaction of the change it records, `seq` dense), so
 * a consumer (the webhook fan-out, an audit stream sink) keeps only its position here: every row
 * with `seq` above `seq` is still to be handled. The position only moves forward (`advance`).
 */
export const outboxCursors = sqliteTable('outbox_cursors', {
  /** The consumer's stable name (`webhooks`, `stream:<sink id>`). */
  consumer: text('consumer').primaryKey(),
  /** The last audit `seq` the consumer has handled; 0 = none. */
  seq: integer('seq').notNull(),
  /** When the cursor last moved, Unix ms. */
  updatedAt: integer('updated_at').notNull(),
});
