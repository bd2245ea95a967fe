/**
 * Instance leases on PostgreSQL: replicas hold leases at once (not single-server), renewal answers
 * false once the row is gone, and a lease left by a process certainly gone from this host ends at
 * the next acquisition while a live replica's lease is left alone.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLeasePg, liveInstancesPg, releaseLeasePg, renewLeasePg, setLeaseUrlPg } from '../../src/platform/lease/lease.pg.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { freshDatabase } from '../helpers/postgres.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const TTL = 30_000;

describe('instance leases on PostgreSQL', () => {
  let a: PgDb;
  let b: PgDb;

  beforeAll(async () => {
    const url = await freshDatabase('leases');
    a = await openPgDb({ url });
    b = await openPgDb({ url, migrate: false });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('lets several replicas hold leases at once, renews, records the URL and releases', async () => {
    await Promise.all([acquireLeasePg(a, { id: 'A', ttlMs: TTL }, T0), acquireLeasePg(b, { id: 'B', ttlMs: TTL }, T0)]);
    expect((await liveInstancesPg(a, T0 + 1)).map((r) => r.id)).toEqual(['A', 'B']);
    expect((await liveInstancesPg(a, T0 + 1, 'A')).map((r) => r.id)).toEqual(['B']);
    await setLeaseUrlPg(b, 'B', 'http://127.0.0.1:1');
    expect(await renewLeasePg(b, { id: 'B', ttlMs: TTL }, T0 + TTL)).toBe(true);
    const [bRow] = await liveInstancesPg(a, T0 + TTL + 1);
    expect(bRow).toMatchObject({ id: 'B', url: 'http://127.0.0.1:1', leaseUntil: T0 + 2 * TTL, startedAt: T0 });
    await releaseLeasePg(b, 'B');
    expect(await renewLeasePg(b, { id: 'B', ttlMs: TTL }, T0 + TTL)).toBe(false);
    expect((await liveInstancesPg(a, T0 + 1)).map((r) => r.id)).toEqual(['A']);
  });

  it('ends at acquisition the lease of a process gone from this host, never a live one', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    await a.pool.query(`INSERT INTO broker_instances (id, pid, host, url, started_at, lease_until) VALUES ('dead', $1, $2, NULL, $3, $4)`, [deadPid, os.hostname(), T0, T0 + TTL]);
    await a.pool.query(`INSERT INTO broker_instances (id, pid, host, url, started_at, lease_until) VALUES ('remote', 1, 'another-host', NULL, $1, $2)`, [T0, T0 + TTL]);
    await acquireLeasePg(b, { id: 'C', ttlMs: TTL }, T0 + 5);
    const rows = (await a.pool.query<{ id: string; lease_until: string }>(`SELECT id, lease_until FROM broker_instances WHERE id IN ('dead', 'remote') ORDER BY id`)).rows;
    expect(rows.map((r) => [r.id, Number(r.lease_until)])).toEqual([
      ['dead', T0 + 5],
      ['remote', T0 + TTL],
    ]);
  });
});
