/**
 * The grant index's reads on PostgreSQL ({@link AsyncGrantRows}): the same rows the SQLite index
 * reads with prepared statements, read through the pool when the grants' change sequence moved.
 * Raw SQL on the pool rather than the query builder: the approvals count is a correlated subquery,
 * and the times are cast to `float8` so they arrive as numbers (Unix ms fits exactly).
 */
import type { PgDb } from '../../platform/db/pg.js';
import type { AsyncGrantRows, LoadedRow } from './source.js';
import type { RevokedGrant } from './types.js';

const COLUMNS = `
  g.id, g."group", g.provider, g.level, g.allowed_actions AS "allowedActions",
  g.denied_actions AS "deniedActions", g.resources, g.status,
  g.activated_at::float8 AS "activatedAt", g.expires_at::float8 AS "expiresAt",
  g.pending_expires_at::float8 AS "pendingExpiresAt",
  (SELECT COUNT(*) FROM grant_approvals a
    WHERE a.grant_id = g.id AND a.grant_digest = g.digest AND a.decision = 'approve')::int AS approvals`;

const REVOKED = `g.revoked_at::float8 AS "revokedAt", g.revoked_by AS "revokedBy", g.revoke_reason AS reason`;

/**
 * {@link AsyncGrantRows} over one PostgreSQL pool.
 * @throws (each read rejects) the driver's error when the database cannot be read.
 */
export function pgGrantRows(pg: PgDb): AsyncGrantRows {
  return {
    changesSince: async (seq) =>
      (await pg.pool.query<{ seq: number; grantId: string }>('SELECT seq::float8 AS seq, grant_id AS "grantId" FROM grant_changes WHERE seq > $1 ORDER BY seq', [seq])).rows,
    one: async (id) => {
      const { rows } = await pg.pool.query<LoadedRow & { revokedAt: number | null; revokedBy: string | null; reason: string | null }>(
        `SELECT ${COLUMNS}, ${REVOKED} FROM grants g WHERE g.id = $1`,
        [id],
      );
      const row = rows[0];
      if (!row) return undefined;
      const revoked: RevokedGrant | null = row.status === 'revoked' && row.revokedAt !== null ? { id: row.id, revokedAt: row.revokedAt, revokedBy: row.revokedBy, reason: row.reason } : null;
      return { ...row, revoked };
    },
    live: async () => (await pg.pool.query<LoadedRow>(`SELECT ${COLUMNS} FROM grants g WHERE g.status IN ('active', 'pending_approval') ORDER BY g.created_at, g.id`)).rows,
    lastRevokedEach: async () =>
      (
        await pg.pool.query<RevokedGrant & { group: string; provider: string }>(
          `SELECT DISTINCT ON (g."group", g.provider) g.id, g."group", g.provider, ${REVOKED}
             FROM grants g WHERE g.status = 'revoked' AND g.revoked_at IS NOT NULL
             ORDER BY g."group", g.provider, g.revoked_at DESC, g.id DESC`,
        )
      ).rows,
  };
}
