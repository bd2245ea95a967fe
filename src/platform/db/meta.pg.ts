import { pgTable, text } from 'drizzle-orm/pg-core';

/** PostgreSQL mirror of `broker_meta` (`meta.ts`): broker-wide facts and the `/ready` write probe. */
export const brokerMeta = pgTable('broker_meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});
