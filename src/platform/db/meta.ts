import { sqliteTable, text } from 'drizzle-orm/sqlite-core';

/** Small key/value table for broker-wide facts (and the `/ready` write probe). */
export const brokerMeta = sqliteTable('broker_meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});
