import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * `group_keys`: which HKDF key versions exist per group. Only metadata: the secrets themselves are
 * derived from the master key on demand and never stored.
 */
export const groupKeys = sqliteTable(
  'group_keys',
  {
    group: text('group').notNull(),
    version: integer('version').notNull(),
    /** Unix ms. */
    createdAt: integer('created_at').notNull(),
    /** Unix ms after which this version no longer verifies; null while current. */
    retiresAt: integer('retires_at'),
  },
  (t) => [primaryKey({ columns: [t.group, t.version] })],
);

/**
 * `group_keys_version`: one row (`id` 1) whose `version` counts every write to `group_keys`,
 * bumped by triggers (see the `keys_version_triggers` migration), from any connection or process.
 * It is the keys' change sequence (`platform/db/change-sequence.ts`): the in-memory
 * {@link KeyStore} reads it on every lookup (one primary-key read) and reloads `group_keys` when it
 * moved.
 */
export const groupKeysVersion = sqliteTable('group_keys_version', {
  id: integer('id').primaryKey(),
  version: integer('version').notNull(),
});
