import { bigint, index, integer, pgTable, text } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `broker_instances` (`schema.ts`): one row per serving broker process, its
 * lease. On PostgreSQL several live rows are normal (one per replica); a row whose `lease_until`
 * has passed belongs to a replica that died. Times are Unix ms.
 */
export const brokerInstances = pgTable(
  'broker_instances',
  {
    id: text('id').primaryKey(),
    pid: integer('pid').notNull(),
    host: text('host').notNull(),
    url: text('url'),
    startedAt: bigint('started_at', { mode: 'number' }).notNull(),
    leaseUntil: bigint('lease_until', { mode: 'number' }).notNull(),
  },
  (t) => [index('broker_instances_lease_idx').on(t.leaseUntil)],
);
