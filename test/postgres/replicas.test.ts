/**
 * Three real broker processes on one PostgreSQL database behave as one broker: requests are spread
 * over the replicas (round robin) and every promise of a single broker holds across them —
 * one execution per idempotency key, backpressure counted across replicas, one audit chain,
 * revocation, key rotation and expiry seen by the next request on every replica, optimistic locking (ETag / If-Match) and
 * exactly-once kernel dispatch across replicas, and crash recovery by ownership: a replica killed
 * with SIGKILL mid-call leaves that call `running` until its instance lease runs out, then a live
 * replica marks it `unknown_outcome`, while the other replicas keep serving and their own calls
 * are never touched.
 *
 * The replicas are `test/calls/fixtures/serve.ts` processes (`broker serve` plus the `test`
 * provider, whose attempts they print), each with its own data directory holding copies of the
 * same keys (`master.key`, `token.key`, `checkpoint.key`), as on three hosts.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient, type BrokerResponse } from '../../src/client/index.js';
import { closeDeps, createDeps, type Deps } from '../../src/app/deps.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { freshDatabase } from '../helpers/postgres.js';
import { runCli } from '../helpers/process.js';
import { serveFixture, type Served } from '../calls/served.js';

const KEY_FILES = ['master.key', 'token.key', 'checkpoint.key'];
/** A short instance lease, so a killed replica's calls are recovered within the test. */
const LEASE_TTL_MS = 2000;

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('three broker replicas on one PostgreSQL', () => {
  const dirs = [tempDir('broker-replica-a-'), tempDir('broker-replica-b-'), tempDir('broker-replica-c-')];
  const replicas: Served[] = [];
  let databaseUrl = '';
  let deps: Deps | undefined;
  let operator = '';
  let next = 0;

  const env = (i: number): Record<string, string> => ({
    BROKER_DATA_DIR: dirs[i]!,
    BROKER_DATABASE_URL: databaseUrl,
    BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    BROKER_HOST: '127.0.0.1',
    BROKER_PORT: '0',
    BROKER_LOG_LEVEL: 'info',
    BROKER_LEASE_TTL_MS: String(LEASE_TTL_MS),
    BROKER_DISPATCH_INTERVAL_MS: '200',
    BROKER_GROUP_CONCURRENCY: '10',
  });
  /** A signing client for `group` against replica `i`. */
  const client = (group: string, i: number) => {
    const key = deps!.keys.current(group);
    return new BrokerClient({ baseUrl: replicas[i]!.url, credential: { keyid: key.keyid, secret: key.secret } });
  };
  /** The next live replica, round robin (the load balancer). */
  const live = () => {
    for (;;) {
      const i = next++ % replicas.length;
      const r = replicas[i]!;
      if (r.child.exitCode === null && r.child.signalCode === null) return i;
    }
  };
  const attempts = (requestId: string) => replicas.flatMap((r) => r.attempts).filter((id) => id === requestId).length;
  const asOperator = async (i: number, method: string, p: string, json?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${operator}` };
    if (json !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'idempotency-key': randomUUID() });
    const res = await fetch(new URL(p, replicas[i]!.url), { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  };
  const grant = async (group: string, level: number, i = live()) => {
    const r = await client('main', i).post('/v1/grants', { group, provider: 'test', level, reason: 'replica test' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { id: string };
  };

  beforeAll(async () => {
    databaseUrl = await freshDatabase('replicas');
    replicas.push(await serveFixture(env(0)));
    for (const dir of dirs.slice(1)) for (const f of KEY_FILES) fs.copyFileSync(path.join(dirs[0]!, f), path.join(dir, f));
    // The other two start together: the migration lock and the start-up writes race.
    replicas.push(...(await Promise.all([serveFixture(env(1)), serveFixture(env(2))])));
    // The test process reads the same database (group keys, tokens) but never serves.
    deps = await createDeps(loadConfig(env(0)), { logger: createLogger('silent') });
    operator = (await deps.tokens.mint('operator', 'olga', 3600)).token;
    await grant('developer', 1);
    await grant('security', 1);
  });
  afterAll(async () => {
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    if (deps) await closeDeps(deps);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('50 concurrent identical requests over 3 replicas execute once; a reused key with another body is 422 on every replica', async () => {
    const key = randomUUID();
    const body = { action: 'test.read', params: { resource: 'acme/once' } };
    const answers = await Promise.all(Array.from({ length: 50 }, () => client('developer', live()).post('/v1/ext/calls', body, { idempotencyKey: key })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 200 || s === 409), JSON.stringify(statuses)).toBe(true);
    const fresh = answers.filter((a) => a.status === 200 && a.headers.get('idempotent-replayed') !== 'true');
    expect(fresh).toHaveLength(1);
    for (const a of answers.filter((a) => a.status === 409)) expect((a.body as any).code).toBe('request_in_flight');
    expect(attempts(key)).toBe(1);
    for (let i = 0; i < 3; i++) {
      const replay = await client('developer', i).post('/v1/ext/calls', body, { idempotencyKey: key });
      expect(replay.status).toBe(200);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(fresh[0]!.body);
      const other = await client('developer', i).post('/v1/ext/calls', { ...body, params: { resource: 'acme/other' } }, { idempotencyKey: key });
      expect(other.status).toBe(422);
      expect((other.body as any).code).toBe('idempotency_key_reused');
    }
    expect(attempts(key)).toBe(1);
  });

  it('at most 5 pending calls per group across the replicas; the rest are 429 with Retry-After and other groups are unaffected', async () => {
    for (const r of replicas) r.hold();
    const keys = Array.from({ length: 9 }, () => randomUUID());
    const pending = keys.map((k) => client('developer', live()).post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: k }));
    const settled: (BrokerResponse | undefined)[] = keys.map(() => undefined);
    pending.forEach((p, i) => void p.then((a) => (settled[i] = a)));
    const refused = await until('four refusals', async () => {
      const done = settled.filter((a): a is BrokerResponse => a !== undefined);
      return done.length >= 4 ? done : undefined;
    });
    expect(refused.map((a) => a.status)).toEqual([429, 429, 429, 429]);
    for (const a of refused) {
      expect((a.body as any).code).toBe('backpressure');
      expect(a.headers.get('retry-after')).toBe('1');
    }
    await until('the five admitted calls to run', async () => (keys.reduce((n, k) => n + attempts(k), 0) === 5 ? true : undefined));
    const other = await client('security', live()).post('/v1/ext/calls', { action: 'test.read', params: {} }, { idempotencyKey: randomUUID() });
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    expect(settled.filter((a) => a !== undefined)).toHaveLength(4);
    for (const r of replicas) r.release();
    const all = await Promise.all(pending);
    expect(all.filter((a) => a.status === 200)).toHaveLength(5);
    expect(keys.reduce((n, k) => n + attempts(k), 0)).toBe(5);
  });

  it('a revocation through one replica is seen by the next request on every other replica', async () => {
    const g = await grant('developer', 2, 0);
    const task = await client('main', 1).post('/v1/tasks', { title: 'replica coupling', type: 'BUG' });
    expect(task.status).toBe(201);
    let etag: string = task.headers.get('etag')!;
    for (const [to, extra, group, i] of [
      ['TRIAGED', {}, 'main', 2],
      ['READY', { assigned_group: 'developer' }, 'main', 0],
    ] as const) {
      const r = await client(group, i).post(`/v1/tasks/${task.body.id}/transition`, { to, ...extra }, { headers: { 'if-match': etag } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      etag = r.headers.get('etag')!;
    }
    // A dispatch loop moves it to DOING for developer.
    await until('the task to be dispatched', async () => ((await client('main', live()).get(`/v1/tasks/${task.body.id}`)).body.state === 'DOING' ? true : undefined));
    const write = (i: number) => client('developer', i).post('/v1/ext/calls', { action: 'test.write', params: {}, task_id: task.body.id }, { idempotencyKey: randomUUID() });
    for (let i = 0; i < 3; i++) expect((await write(i)).status).toBe(200);
    const revoked = await asOperator(2, 'POST', `/v1/grants/${g.id}/revoke`, { reason: 'replica test' });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    for (let i = 0; i < 3; i++) {
      const r = await write(i);
      expect(r.status).toBe(403);
      expect((r.body as any).code).toBe('insufficient_level'); // the L1 grant remains; the L2 one is gone
    }
  });

  it('a key rotation and a grant expiry are seen by the next request on every replica', async () => {
    const read = (cred: { keyid: string; secret: Buffer | string }, i: number) =>
      new BrokerClient({ baseUrl: replicas[i]!.url, credential: cred as never }).post('/v1/ext/calls', { action: 'test.read', params: {} }, { idempotencyKey: randomUUID() });
    const old = deps!.keys.current('security');
    for (let i = 0; i < 3; i++) expect((await read(old, i)).status).toBe(200);
    // Rotated by another process (the CLI) with no grace: the old version stops at once.
    const rotated = await runCli(['secrets', 'rotate', '--group', 'security'], { ...env(0), BROKER_KEY_GRACE_S: '0' });
    expect(rotated.code, rotated.stderr).toBe(0);
    await deps!.readModel.refresh();
    const fresh = deps!.keys.current('security');
    expect(fresh.keyid).not.toBe(old.keyid);
    for (let i = 0; i < 3; i++) {
      const refused = await read(old, i);
      expect(refused.status).toBe(401);
      expect((refused.body as any).code).toBe('unknown_key');
      expect((await read(fresh, i)).status).toBe(200);
    }

    const short = await client('main', 0).post('/v1/grants', { group: 'main', provider: 'test', level: 1, ttl_s: 2, reason: 'expires soon' });
    expect(short.status, JSON.stringify(short.body)).toBe(201);
    const mainRead = (i: number) => client('main', i).post('/v1/ext/calls', { action: 'test.read', params: {} }, { idempotencyKey: randomUUID() });
    for (let i = 0; i < 3; i++) expect((await mainRead(i)).status).toBe(200);
    const expiresAt = Date.parse(short.body.expires_at);
    await until('the grant to expire', async () => (Date.now() > expiresAt + 50 ? true : undefined));
    for (let i = 0; i < 3; i++) {
      const late = await mainRead(i);
      expect(late.status).toBe(403);
      expect((late.body as any).code).toBe('capability_expired');
    }
  });

  it('optimistic locking holds across replicas: a stale If-Match is 412 on another replica', async () => {
    const created = await client('main', 0).post('/v1/tasks', { title: 'etag across replicas', type: 'BUG' });
    const read = await client('main', 1).get(`/v1/tasks/${created.body.id}`);
    expect(read.headers.get('etag')).toBe(created.headers.get('etag'));
    const moved = await client('main', 2).post(`/v1/tasks/${created.body.id}/transition`, { to: 'TRIAGED' }, { headers: { 'if-match': read.headers.get('etag')! } });
    expect(moved.status).toBe(200);
    const stale = await client('main', 0).post(`/v1/tasks/${created.body.id}/transition`, { to: 'READY', assigned_group: 'developer' }, { headers: { 'if-match': read.headers.get('etag')! } });
    expect(stale.status).toBe(412);
  });

  it('three dispatch loops dispatch each READY task exactly once', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 8; n++) {
      let r = await client('main', live()).post('/v1/tasks', { title: `dispatch ${n}`, type: 'BUG' });
      const id: string = r.body.id;
      r = await client('main', live()).post(`/v1/tasks/${id}/transition`, { to: 'TRIAGED' }, { headers: { 'if-match': r.headers.get('etag')! } });
      r = await client('main', live()).post(`/v1/tasks/${id}/transition`, { to: 'READY', assigned_group: 'security' }, { headers: { 'if-match': r.headers.get('etag')! } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      ids.push(id);
    }
    await until('every task to be dispatched', async () => {
      const states = await Promise.all(ids.map(async (id) => (await client('main', live()).get(`/v1/tasks/${id}`)).body.state));
      return states.every((s) => s === 'DOING') ? true : undefined;
    });
    const page = await client('security', live()).get('/v1/dispatches?limit=100');
    const ours = (page.body as any).data.filter((d: { task_id: string }) => ids.includes(d.task_id));
    expect(ours).toHaveLength(ids.length);
    expect(new Set(ours.map((d: { task_id: string }) => d.task_id)).size).toBe(ids.length);
  });

  it('kill -9 of a replica mid-call: its call ends unknown_outcome after its lease; the others keep serving and their calls are untouched', async () => {
    for (const r of replicas) r.hold();
    const victim = replicas[1]!;
    const lostKey = randomUUID();
    const lost = client('developer', 1).post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: lostKey }).catch((e: Error) => e);
    await victim.attempted(lostKey);
    const keptKey = randomUUID();
    const kept = client('developer', 0).post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: keptKey });
    await replicas[0]!.attempted(keptKey);
    victim.child.kill('SIGKILL');
    await victim.exited;
    expect(await lost).toBeInstanceOf(Error);
    const statusOf = async (key: string) => (await asOperator(2, 'GET', `/v1/calls/developer/${key}`)).body.status as string;
    // The victim renewed its lease at most a third of its TTL ago: it has not run out yet.
    expect(await statusOf(lostKey)).toBe('running');

    let served = 0;
    const recovered = await until('the dead replica\'s call to end unknown_outcome', async () => {
      const r = await client('developer', [0, 2][served % 2]!).post('/v1/ext/calls', { action: 'test.read', params: { resource: `acme/live-${served}` } }, { idempotencyKey: randomUUID() });
      expect(r.status, JSON.stringify(r.body)).toBe(200); // the live replicas keep serving throughout
      served++;
      const s = await statusOf(lostKey);
      if (s === 'running') {
        return undefined;
      }
      return s;
    });
    expect(recovered).toBe('unknown_outcome');
    expect(served).toBeGreaterThan(0);
    expect(await statusOf(keptKey)).toBe('running'); // a live replica's call is never touched
    replicas[0]!.release();
    expect((await kept).status).toBe(200);
    const replay = await client('developer', 2).post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: lostKey });
    expect(replay.status).toBe(502);
    expect((replay.body as any).code).toBe('unknown_outcome');
    expect(attempts(lostKey)).toBe(1);
  });

  it('a replica started without the shared master.key stops at start-up instead of serving secrets no agent holds', async () => {
    const stray = tempDir('broker-replica-stray-');
    try {
      const started = await serveFixture({ ...env(0), BROKER_DATA_DIR: stray }).then(
        (r) => (r.child.kill('SIGKILL'), 'listened'),
        (err: Error) => err.message,
      );
      expect(started).toMatch(/not the master key this database's group keys were made under/);
    } finally {
      fs.rmSync(stray, { recursive: true, force: true });
    }
  });

  it('one audit chain: `broker audit verify` over the database the three replicas wrote', async () => {
    const out = await runCli(['audit', 'verify'], env(0));
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout + out.stderr).toMatch(/ok|verified/i);
  });
});
