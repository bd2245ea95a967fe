import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * `broker_instances`: one row per serving broker process (`broker serve`), its lease. The process
 * inserts its row before it serves, renews `lease_until` on a timer and deletes the row when it
 * stops gracefully. A row whose `lease_until` has passed belongs to a process that died: its
 * `running` calls (`ext_calls.instance_id`) become `unknown_outcome` and the row is deleted
 * (`recovery.ts`). CLI commands never hold a row. Times are Unix ms.
 */
export const brokerInstances = sqliteTable(
  'broker_instances',
  {
    /** A ULID made when the process starts. */
    id: text('id').primaryKey(),
    /** The process id, on `host`. */
    pid: integer('pid').notNull(),
    /** `os.hostname()` of the process. */
    host: text('host').notNull(),
    /** The origin it listens on (`http://127.0.0.1:8787`); null until it listens. */
    url: text('url'),
    startedAt: integer('started_at').notNull(),
    /** Until when the process counts as alive, unless it renews (`BROKER_LEASE_TTL_MS` after each renewal). */
    leaseUntil: integer('lease_until').notNull(),
  },
  (t) => [index('broker_instances_lease_idx').on(t.leaseUntil)],
);
