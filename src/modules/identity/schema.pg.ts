import { bigint, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `group_keys` (`schema.ts`): which HKDF key versions exist per group (the
 * secrets are derived from the master key, never stored). Times are Unix ms.
 */
export const groupKeys = pgTable(
  'group_keys',
  {
    group: text('group').notNull(),
    version: integer('version').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    retiresAt: bigint('retires_at', { mode: 'number' }),
  },
  (t) => [primaryKey({ columns: [t.group, t.version] })],
);

/**
 * PostgreSQL mirror of `group_keys_version`: the one row (`id` 1) whose `version` a trigger bumps
 * on every write to `group_keys` (baseline migration in `drizzle-pg/`). The row lock of that
 * UPDATE orders concurrent writers, so the counter moves in commit order on every replica.
 */
export const groupKeysVersion = pgTable('group_keys_version', {
  id: integer('id').primaryKey(),
  version: bigint('version', { mode: 'number' }).notNull(),
});
