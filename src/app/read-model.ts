/**
 * The refresh of the decision path's in-memory read model (the group keys and the grant index)
 * once per request, before the synchronous decision reads it.
 *
 * On SQLite each synchronous lookup reads its change sequence itself (one B-tree probe), so the
 * refresh does nothing and returns nothing to await. On PostgreSQL a lookup cannot read the
 * database synchronously: the refresh reads both change sequences' heads in one query
 * (`group_keys_version.version`, `MAX(grant_changes.seq)`), then reloads what moved, before the
 * request's signature is checked. So a write committed on any replica before a request arrives is
 * seen by that request; when the heads or rows cannot be read the request fails closed (503).
 */
import type { GrantIndex } from '../modules/grants/source.js';
import type { KeyStore } from '../modules/identity/keys.js';
import type { PgDb } from '../platform/db/pg.js';
import { ApiError } from '../platform/http/problem.js';

/** The per-request refresh of the read model. */
export interface ReadModel {
  /**
   * Brings the keys and grants in memory up to every commit made before the call; undefined when
   * there is nothing to wait for (SQLite).
   * @throws (rejects) ApiError 503 `service_unavailable` (`Retry-After: 1`) when the database
   *   cannot be read: the request must not be decided from memory.
   */
  refresh(): Promise<void> | undefined;
}

/** SQLite's read model: every lookup reads its change sequence itself. */
export const syncReadModel: ReadModel = { refresh: () => undefined };

/** The read model of a PostgreSQL database (see the module note). */
export function pgReadModel(pg: PgDb, keys: Pick<KeyStore, 'applyHead'>, grants: Pick<GrantIndex, 'applyHead'>): ReadModel {
  return {
    refresh: async () => {
      try {
        const { rows } = await pg.pool.query<{ keys: number | null; grants: number | null }>(
          'SELECT (SELECT version FROM group_keys_version WHERE id = 1)::float8 AS keys, (SELECT MAX(seq) FROM grant_changes)::float8 AS grants',
        );
        const heads = rows[0]!;
        await Promise.all([keys.applyHead(heads.keys ?? 0), grants.applyHead(heads.grants ?? 0)]);
      } catch {
        throw new ApiError('service_unavailable', `The broker cannot read its grants and keys from ${pg.label} now, so nothing was decided; retry shortly.`, {}, { 'Retry-After': '1' });
      }
    },
  };
}
