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
