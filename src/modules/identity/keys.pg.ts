/**
 * The group keys' reads on PostgreSQL ({@link AsyncKeyRows}): every `group_keys` row, read through
 * the pool when the keys' change sequence moved.
 */
import type { PgDb } from '../../platform/db/pg.js';
import type { AsyncKeyRows } from './keys.js';

/**
 * {@link AsyncKeyRows} over one PostgreSQL pool (times cast to `float8`, so they arrive as numbers).
 * @throws (rejects) the driver's error when the database cannot be read.
 */
export function pgKeyRows(pg: PgDb): AsyncKeyRows {
  return {
    all: async () =>
      (await pg.pool.query<{ group: string; version: number; retiresAt: number | null }>('SELECT "group", version, retires_at::float8 AS "retiresAt" FROM group_keys')).rows,
  };
}
