/**
 * `broker serve`'s dependencies on PostgreSQL (`createDeps` with a `postgres://` URL), as the HTTP
 * suites see them through the harness: a signed call end to end, `/ready`, and failing closed
 * when the database turns read-only (a standby taking over, `default_transaction_read_only`):
 * `/ready` answers 503, a call answers 503 with nothing executed, and both recover by themselves
 * once the database takes writes again. The audit verbs on the PostgreSQL trail, `broker backup`'s
 * refusal naming `pg_dump`. Also the instance lease and crash recovery by ownership
 * of a serving process (`startInstance`) with two replicas on one database.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInstance, type ServingInstance } from '../../src/app/serving.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { call, grant } from '../calls/helpers.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { testServerUrl } from '../helpers/postgres.js';

/** Sets or resets `default_transaction_read_only` on the broker's database and ends its sessions, so the pool reconnects under the new setting. */
async function setReadOnly(broker: TestBroker, on: boolean): Promise<void> {
  const { database } = broker.deps;
  if (database.engine !== 'postgres') throw new Error('a PostgreSQL broker was expected');
  const name = new URL(broker.databaseEnv['BROKER_DATABASE_URL']!).pathname.slice(1);
  const admin = new pg.Client({ connectionString: testServerUrl() });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} ${on ? 'SET default_transaction_read_only = on' : 'RESET default_transaction_read_only'}`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
  } finally {
    await admin.end();
  }
}

/** GET /ready until it answers `status` (the write probe runs at most once a second), at most `tries` times. */
async function readyUntil(broker: TestBroker, status: number, tries = 20): Promise<{ status: number; body: any }> {
  let last = { status: 0, body: null as any };
  for (let i = 0; i < tries; i += 1) {
    const res = await fetch(`${broker.url}/ready`);
    last = { status: res.status, body: await res.json() };
    if (last.status === status) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  return last;
}

describe('a broker served from PostgreSQL', () => {
  let broker: TestBroker;
  let tp: TestProvider;
  beforeAll(async () => {
    tp = testProvider();
    broker = await startBroker({ engine: 'postgres', providers: [tp.provider] });
    await grant(broker, { level: 1 });
  });
  afterAll(async () => {
    tp?.release();
    await broker?.stop();
  });

  it('serves from the PostgreSQL database: ready, a signed call executes once and is audited there', async () => {
    expect(broker.deps.database.engine).toBe('postgres');
    expect(broker.deps.db).toBeUndefined();
    expect((await readyUntil(broker, 200)).status).toBe(200);
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read' }, key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(tp.attemptsOf(key)).toBe(1);
    expect((await broker.auditRows(`call:developer:${key}`)).map((r) => r.kind)).toEqual(['call.claimed', 'call.succeeded']);
    expect((await broker.verifyChain()).ok).toBe(true);
  });

  it('answers 503 on /ready and on a call (nothing executed) while the database is read-only, and recovers by itself', async () => {
    await setReadOnly(broker, true);
    try {
      const notReady = await readyUntil(broker, 503);
      expect(notReady.status).toBe(503);
      expect(notReady.body.code).toBe('not_ready');
      expect(notReady.body.reasons.join(' ')).toMatch(/not writable: .*read-only/);
      const key = randomUUID();
      const refused = await call(broker, 'developer', { action: 'test.read' }, key);
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('audit_unavailable');
      expect(tp.attemptsOf(key)).toBe(0);
    } finally {
      await setReadOnly(broker, false);
    }
    expect((await readyUntil(broker, 200)).status).toBe(200);
    const key = randomUUID();
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
    expect(tp.attemptsOf(key)).toBe(1);
  });
});

describe('the audit and backup verbs on PostgreSQL', () => {
  let broker: TestBroker;
  let env: Record<string, string>;
  beforeAll(async () => {
    broker = await startBroker({ engine: 'postgres' });
    expect((await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'github', level: 1, reason: 'audit verbs' })).status).toBe(201);
    env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn', ...broker.databaseEnv };
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('`audit verify`, `audit head` and `audit export` read the PostgreSQL trail; the export verifies with --file', async () => {
    const rows = await broker.auditRows();
    const verify = await runCli(['audit', 'verify'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`audit chain ok: ${rows.length} rows verified`);
    const head = await runCli(['audit', 'head'], env);
    expect(head.code, head.stderr).toBe(0);
    expect(JSON.parse(head.stdout)).toMatchObject({ seq: rows.at(-1)!.seq, hash: rows.at(-1)!.hash });
    const file = path.join(tempDir(), 'trail.jsonl');
    const exported = await runCli(['audit', 'export', '--out', file], env);
    expect(exported.code, exported.stderr).toBe(0);
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(rows.length);
    const checked = await runCli(['audit', 'verify', '--file', file], {});
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain(`audit export ok: ${rows.length} rows verified, seq 1–${rows.length}`);
  });

  it('`broker backup` refuses on PostgreSQL, names pg_dump, and writes nothing', async () => {
    const before = (await broker.auditRows()).length;
    const out = path.join(tempDir(), 'copy.db');
    const res = await runCli(['backup', '--out', out], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/pg_dump/);
    expect(res.stderr).not.toContain(new URL(env['BROKER_DATABASE_URL']!).password);
    expect(fs.existsSync(out)).toBe(false);
    expect((await broker.auditRows()).length).toBe(before);
  });
});

/** Another replica of `first`'s database: its own data directory, holding the shared master.key and token.key. */
async function replicaOf(first: TestBroker): Promise<TestBroker> {
  const dataDir = tempDir();
  for (const f of ['master.key', 'token.key']) fs.copyFileSync(path.join(first.dataDir, f), path.join(dataDir, f));
  return startBroker({ engine: 'postgres', listen: false, env: first.databaseEnv, dataDir });
}

describe('instance leases and crash recovery of serving processes on PostgreSQL', () => {
  let a: TestBroker;
  let b: TestBroker;
  const held: ServingInstance[] = [];
  beforeAll(async () => {
    a = await startBroker({ engine: 'postgres', listen: false });
    b = await replicaOf(a);
  });
  afterAll(async () => {
    for (const i of held) await i.release();
    await b?.stop();
    await a?.stop();
  });

  const runningCall = async (owner: string, requestId: string) => {
    const now = Date.now();
    await a.rows(
      `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, grant_id, status, receipt, attempts, created_at, instance_id)
       VALUES ('developer', ?, 'f', 'test.read', 1, 'acme/api', 'test.read on acme/api', 'g', 'running', ?, 1, ?, ?)`,
      requestId,
      JSON.stringify({ group: 'developer', request_id: requestId, steps: [] }),
      now,
      owner,
    );
  };
  const statusOf = async (requestId: string) => (await a.rows<{ status: string }>('SELECT status FROM ext_calls WHERE request_id = ?', requestId))[0]?.status;

  it('gives each replica a lease of its own, and ends only the calls of an instance whose lease expired', async () => {
    held.push(await startInstance(a.deps, () => undefined));
    held.push(await startInstance(b.deps, () => undefined));
    const leases = await a.rows<{ id: string }>('SELECT id FROM broker_instances ORDER BY id');
    expect(leases.map((l) => l.id).sort()).toEqual([a.deps.instanceId, b.deps.instanceId].sort());

    // A call running on B (live) and one left by a replica whose lease ran out.
    await runningCall(b.deps.instanceId, 'on-b');
    await a.rows(`INSERT INTO broker_instances (id, pid, host, url, started_at, lease_until) VALUES ('dead', 1, 'elsewhere', NULL, 1, 2)`);
    await runningCall('dead', 'on-dead');

    // A third replica starting: its recovery takes over the dead instance's call only.
    const c = await replicaOf(a);
    try {
      held.push(await startInstance(c.deps, () => undefined));
      expect(await statusOf('on-dead')).toBe('unknown_outcome');
      expect(await statusOf('on-b')).toBe('running');
      expect((await a.rows("SELECT id FROM broker_instances WHERE id = 'dead'")).length).toBe(0);
      expect((await a.auditRows('call:developer:on-dead')).map((r) => r.kind)).toEqual(['call.unknown_outcome']);
    } finally {
      await held.pop()!.release();
      await c.stop();
    }
    expect((await a.rows('SELECT id FROM broker_instances WHERE id = ?', c.deps.instanceId)).length).toBe(0);
  });
});
