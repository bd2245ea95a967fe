/**
 * Fail-closed on PostgreSQL: an unreachable, refusing or read-only database is reported as such
 * (503 `service_unavailable`, `/ready`'s write probe fails), and the pool recovers by itself when
 * the database is back.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/platform/http/problem.js';
import { failClosedPg, isPgUnavailable, openPgDb, pendingMigrationsPg, writeProbePg, type PgDb } from '../../src/platform/db/pg.js';
import { freshDatabase, testServerUrl } from '../helpers/postgres.js';

const opened: PgDb[] = [];
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
});
async function open(url: string, migrate = true): Promise<PgDb> {
  const db = await openPgDb({ url, migrate, poolMax: 3, connectTimeoutMs: 2000 });
  opened.push(db);
  return db;
}

/** A URL on a local port nothing listens on, with a password that must not appear anywhere. */
async function deadUrl(): Promise<string> {
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  return `postgres://broker:Sup3rS3cret@127.0.0.1:${port}/broker`;
}

describe('the durable write probe', () => {
  let db: PgDb;
  beforeAll(async () => {
    db = await open(await freshDatabase('probe'));
  });

  it('commits the ready_probe row on a writable database', async () => {
    expect(await writeProbePg(db, 0)).toBeNull();
    const row = await db.pool.query<{ value: string }>("SELECT value FROM broker_meta WHERE key = 'ready_probe'");
    expect(Date.parse(row.rows[0]!.value)).not.toBeNaN();
    expect(await writeProbePg(db, 2000)).toBeNull();
  });

  it('fails on a read-only database (a standby, default_transaction_read_only), naming why', async () => {
    const url = await freshDatabase('readonly');
    await open(url);
    const admin = new pg.Client({ connectionString: testServerUrl() });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(new URL(url).pathname.slice(1))} SET default_transaction_read_only = on`);
    await admin.end();
    const ro = await open(url, false);
    expect(await writeProbePg(ro, 0)).toMatch(/read-only transaction/);
    const err = await ro.pool.query("INSERT INTO broker_meta VALUES ('x', 'y')").catch((e: unknown) => e);
    expect(isPgUnavailable(err)).toBe(true);
  });

  it('fails, without throwing, when the server cannot be reached', async () => {
    const dead = await openPgDb({ url: await deadUrl(), migrate: false, connectTimeoutMs: 2000 });
    opened.push(dead);
    expect(await writeProbePg(dead, 0)).toMatch(/ECONNREFUSED|connect/);
  });

  it('recovers by itself when the server drops every connection (no crash on idle-connection errors)', async () => {
    const url = await freshDatabase('recover');
    const r = await open(url);
    expect(await writeProbePg(r, 0)).toBeNull();
    const admin = new pg.Client({ connectionString: testServerUrl() });
    await admin.connect();
    const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
      new URL(url).pathname.slice(1),
    ]);
    await admin.end();
    expect(killed.rowCount).toBeGreaterThan(0);
    // A probe may meet a connection killed under it (it is then closed, not pooled); the next one gets a fresh one.
    let reason: string | null = 'not probed';
    for (let i = 1; i <= 3 && reason !== null; i += 1) reason = await writeProbePg(r, i * 2000);
    expect(reason).toBeNull();
  });
});

describe('fail-closed mapping', () => {
  it('openPgDb on an unreachable server: 503 service_unavailable with Retry-After, and no password anywhere', async () => {
    const url = await deadUrl();
    const err = await openPgDb({ url, connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const api = err as ApiError;
    expect(api.status).toBe(503);
    expect(api.code).toBe('service_unavailable');
    expect(api.headers['Retry-After']).toBe('1');
    expect(JSON.stringify({ m: api.message, d: api.detail, x: api.extensions })).not.toContain('Sup3rS3cret');
    expect(api.detail).toContain('broker:***@127.0.0.1');
  });

  it('a wrong password or a missing database is "unavailable"; a statement error passes through', async () => {
    const good = new URL(await freshDatabase('mapping'));
    const wrongPassword = new URL(good);
    wrongPassword.password = 'wrong';
    await expect(openPgDb({ url: wrongPassword.toString() })).rejects.toMatchObject({ code: 'service_unavailable' });
    const noDb = new URL(good);
    noDb.pathname = '/no_such_database';
    await expect(openPgDb({ url: noDb.toString() })).rejects.toMatchObject({ code: 'service_unavailable' });

    const db = await open(good.toString());
    const dup = failClosedPg(() => db.pool.query("INSERT INTO broker_meta VALUES ('k', 'v'), ('k', 'v')"));
    await expect(dup).rejects.toBeInstanceOf(pg.DatabaseError);
    await expect(dup).rejects.toMatchObject({ code: '23505' });
    await expect(pendingMigrationsPg(db)).resolves.toBe(0);
  });

  it('failClosedPg: a dropped connection becomes 503; an ApiError passes through unchanged', async () => {
    const db = await open(await freshDatabase('failclosed'));
    const dropped = failClosedPg(async () => {
      const c = await db.pool.connect();
      try {
        await c.query('SELECT pg_terminate_backend(pg_backend_pid())');
      } finally {
        c.release(true);
      }
    });
    await expect(dropped).rejects.toMatchObject({ code: 'service_unavailable', status: 503 });
    const own = new ApiError('conflict', 'mine');
    await expect(failClosedPg(() => Promise.reject(own))).rejects.toBe(own);
    await expect(failClosedPg(() => Promise.reject(new TypeError('a bug')))).rejects.toBeInstanceOf(TypeError);
  });
});
