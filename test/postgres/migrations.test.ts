/**
 * The PostgreSQL engine's start-up: committed migrations applied once under the migration lock,
 * however many replicas start together, and the triggers that keep the database's own promises.
 */
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgDb, pendingMigrationsPg, PG_MIGRATIONS_DIR, type PgDb } from '../../src/platform/db/pg.js';
import { freshDatabase } from '../helpers/postgres.js';

const MIGRATIONS = readMigrationFiles({ migrationsFolder: PG_MIGRATIONS_DIR }).length;
const opened: PgDb[] = [];
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
});

async function open(url: string, migrate = true): Promise<PgDb> {
  const db = await openPgDb({ url, migrate, poolMax: 4 });
  opened.push(db);
  return db;
}

describe('migrations at start-up', () => {
  it('three replicas opening a fresh database together apply the migrations exactly once, without error', async () => {
    const url = await freshDatabase('migrate3');
    const probe = await open(url, false);
    expect(await pendingMigrationsPg(probe)).toBe(MIGRATIONS);

    // Each open runs the migrator; only the lock keeps them from racing on CREATE TABLE.
    const results = await Promise.allSettled([1, 2, 3].map(() => open(url)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);

    const applied = await probe.pool.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
    expect(Number(applied.rows[0]!.n)).toBe(MIGRATIONS);
    for (const r of results) expect(await pendingMigrationsPg((r as PromiseFulfilledResult<PgDb>).value)).toBe(0);
    const tables = await probe.pool.query<{ n: string }>("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'");
    expect(Number(tables.rows[0]!.n)).toBe(25);
  });

  it('a replica starting on a current database applies nothing', async () => {
    const url = await freshDatabase('migrate_again');
    await open(url);
    const again = await open(url);
    expect(await pendingMigrationsPg(again)).toBe(0);
    const applied = await again.pool.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
    expect(Number(applied.rows[0]!.n)).toBe(MIGRATIONS);
  });
});

describe('the baseline triggers keep the promises the SQLite triggers keep', () => {
  let db: PgDb;
  const G = '0'.repeat(64);
  beforeAll(async () => {
    db = await open(await freshDatabase('triggers'));
  });
  const q = (text: string, values: unknown[] = []) => db.pool.query(text, values);

  it('gov_activities is append-only: UPDATE, DELETE and TRUNCATE are refused', async () => {
    await q("INSERT INTO gov_activities VALUES (1, 't', 'a', 'k', 's', '{}', $1, 'h1')", [G]);
    await expect(q("UPDATE gov_activities SET actor = 'x'")).rejects.toThrow(/append-only/);
    await expect(q('DELETE FROM gov_activities')).rejects.toThrow(/append-only/);
    await expect(q('TRUNCATE gov_activities')).rejects.toThrow(/append-only/);
    expect((await q('SELECT actor FROM gov_activities')).rows).toEqual([{ actor: 'a' }]);
  });

  it('gov_activities refuses a row that does not link to the one before it (gap, fork, or a wrong start)', async () => {
    await expect(q("INSERT INTO gov_activities VALUES (3, 't', 'a', 'k', 's', '{}', 'h1', 'h3')")).rejects.toThrow(/does not follow/);
    await expect(q("INSERT INTO gov_activities VALUES (2, 't', 'a', 'k', 's', '{}', 'other', 'h2')")).rejects.toThrow(/does not follow/);
    await q("INSERT INTO gov_activities VALUES (2, 't', 'a', 'k', 's', '{}', 'h1', 'h2'), (3, 't', 'a', 'k', 's', '{}', 'h2', 'h3')");
    const other = await open(await freshDatabase('genesis'));
    await expect(other.pool.query("INSERT INTO gov_activities VALUES (1, 't', 'a', 'k', 's', '{}', 'x', 'h')")).rejects.toThrow(/genesis/);
  });

  it('token_revocations is append-only', async () => {
    await q("INSERT INTO token_revocations (id, jti, revoked_at, revoked_by, reason) VALUES ('rvk_1', 'j1', 1, 'operator:o', 'r')");
    await expect(q("UPDATE token_revocations SET reason = 'x'")).rejects.toThrow(/append-only/);
    await expect(q('DELETE FROM token_revocations')).rejects.toThrow(/append-only/);
    await expect(q('TRUNCATE token_revocations')).rejects.toThrow(/append-only/);
  });

  it('token_keys: never deleted; retired once; kid, key, created_at and rotation never change', async () => {
    await q("INSERT INTO token_keys (kid, public_jwk, created_at, rotation) VALUES ('k1', '{}', 1, '{\"old_kid\":\"k0\"}')");
    await expect(q('DELETE FROM token_keys')).rejects.toThrow(/never deleted/);
    await expect(q('TRUNCATE token_keys')).rejects.toThrow(/never deleted/);
    await expect(q("UPDATE token_keys SET rotation = NULL WHERE kid = 'k1'")).rejects.toThrow(/retired once/);
    await expect(q("UPDATE token_keys SET public_jwk = '{\"x\":1}' WHERE kid = 'k1'")).rejects.toThrow(/retired once/);
    await q("UPDATE token_keys SET retired_at = 10, verify_until = 20 WHERE kid = 'k1'");
    await expect(q("UPDATE token_keys SET verify_until = 30 WHERE kid = 'k1'")).rejects.toThrow(/retired once/);
    await expect(q("UPDATE token_keys SET retired_at = NULL, verify_until = NULL WHERE kid = 'k1'")).rejects.toThrow(/retired once/);
    expect((await q("SELECT retired_at, verify_until FROM token_keys WHERE kid = 'k1'")).rows).toEqual([{ retired_at: '10', verify_until: '20' }]);
  });

  it('group_keys_version counts every write to group_keys', async () => {
    const version = async () => Number((await q('SELECT version FROM group_keys_version WHERE id = 1')).rows[0].version);
    expect(await version()).toBe(0);
    await q("INSERT INTO group_keys VALUES ('main', 1, 1, NULL), ('dev', 1, 1, NULL)");
    await q("UPDATE group_keys SET retires_at = 5 WHERE \"group\" = 'main'");
    await q("DELETE FROM group_keys WHERE \"group\" = 'dev'");
    expect(await version()).toBe(4);
  });

  it('grant_changes logs every write to grants and grant_approvals, and keeps the last 1000', async () => {
    const grant = (id: string) =>
      q(
        "INSERT INTO grants (id, \"group\", provider, level, reason, requested_by, status, digest, created_at, updated_at) VALUES ($1, 'main', 'github', 1, 'r', 'main', 'active', 'd', 1, 1)",
        [id],
      );
    await grant('grt_a');
    await q("INSERT INTO grant_approvals (grant_id, approver_id, approver_group, decision, grant_digest, jws, created_at) VALUES ('grt_a', 'ap', 'sec', 'approve', 'd', 'j', 1)");
    await q("UPDATE grants SET status = 'revoked' WHERE id = 'grt_a'");
    expect((await q('SELECT grant_id FROM grant_changes ORDER BY seq')).rows.map((r) => r.grant_id)).toEqual(['grt_a', 'grt_a', 'grt_a']);
    await q(
      "INSERT INTO grants (id, \"group\", provider, level, reason, requested_by, status, digest, created_at, updated_at) SELECT 'grt_' || i, 'main', 'github', 1, 'r', 'main', 'active', 'd', 1, 1 FROM generate_series(1, 1005) AS i",
    );
    const kept = await q('SELECT count(*)::int AS n, min(seq)::int AS lo, max(seq)::int AS hi FROM grant_changes');
    expect(kept.rows[0]).toEqual({ n: 1000, lo: 9, hi: 1008 });
  });

  it('grant_changes is in commit order: a second grant writer waits until the first commits', async () => {
    const a = await db.pool.connect();
    const b = await db.pool.connect();
    try {
      await grantRow(db, 'grt_w1');
      await grantRow(db, 'grt_w2');
      const bPid = (await b.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await a.query('BEGIN');
      await a.query("UPDATE grants SET reason = 'first' WHERE id = 'grt_w1'");
      await b.query('BEGIN');
      const second = b.query("UPDATE grants SET reason = 'second' WHERE id = 'grt_w2'");
      // b's statement waits on the grant-changes advisory lock a holds (not on any row: they differ).
      await waitFor(async () => (await q("SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted", [bPid])).rowCount === 1);
      await a.query('COMMIT');
      await second;
      await b.query('COMMIT');
      const order = await q("SELECT grant_id FROM grant_changes WHERE grant_id IN ('grt_w1', 'grt_w2') ORDER BY seq DESC LIMIT 2");
      expect(order.rows.map((r) => r.grant_id)).toEqual(['grt_w2', 'grt_w1']);
    } finally {
      a.release();
      b.release();
    }
  });
});

async function grantRow(db: PgDb, id: string): Promise<void> {
  await db.pool.query(
    "INSERT INTO grants (id, \"group\", provider, level, reason, requested_by, status, digest, created_at, updated_at) VALUES ($1, 'main', 'github', 1, 'r', 'main', 'active', 'd', 1, 1)",
    [id],
  );
}

/** Polls `cond` until it holds (the test's timeout bounds the wait). */
async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
}

