/**
 * Instance leases: a serving process owns the calls it claims, and no other process recovers
 * them while its lease is live. A second `broker serve` on a served database (a newcomer's second
 * terminal) stops with a message naming the live instance and changes nothing, so the call in
 * flight on the live broker completes and is recorded. Recovery runs periodically and takes over
 * only the calls of instances whose lease expired.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { BrokerClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/platform/config.js';
import { closeDeps, createDeps, sqliteDeps, type SqliteDeps } from '../../src/app/deps.js';
import { startInstance } from '../../src/app/serving.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, startBroker, tempDir } from '../helpers/harness.js';
import { BIN, runCli, startServeProcess } from '../helpers/process.js';
import { serveFixture } from './served.js';

/** Runs `broker serve` until it exits; fails (and kills it) if it starts listening instead. */
function serveUntilExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('"msg":"broker listening"')) {
        child.kill('SIGKILL');
        reject(new Error(`a second broker started serving the database:\n${output}`));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('a second broker serve beside a live one', () => {
  const dataDir = tempDir('broker-lease-');
  const env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_HOST: '127.0.0.1', BROKER_PORT: '0', BROKER_LOG_LEVEL: 'info' };
  let deps: SqliteDeps | undefined;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (deps) await closeDeps(deps);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('exits non-zero naming the live instance, changes nothing, and the call in flight completes', async () => {
    const live = await serveFixture(env);
    children.push(live.child);
    deps = sqliteDeps(await createDeps(loadConfig({ ...env }), { logger: createLogger('silent') }));
    const db = deps.db.sqlite;
    const client = (group: string) => {
      const key = deps!.keys.current(group);
      return new BrokerClient({ baseUrl: live.url, credential: { keyid: key.keyid, secret: key.secret } });
    };
    const g = await client('main').post('/v1/grants', { group: 'developer', provider: 'test', level: 1, reason: 'lease test' });
    expect(g.status, JSON.stringify(g.body)).toBe(201);

    const key = randomUUID();
    const inFlight = client('developer').post('/v1/ext/calls', { action: 'test.read', params: { wait: true } }, { idempotencyKey: key });
    await live.attempted(key);
    const [instance] = db.prepare('SELECT id, pid, url FROM broker_instances').all() as { id: string; pid: number; url: string }[];
    expect(instance).toMatchObject({ pid: live.child.pid, url: live.url });
    const snapshot = () => ({
      instances: db.prepare('SELECT * FROM broker_instances').all().length,
      call: db.prepare('SELECT status, instance_id FROM ext_calls WHERE request_id = ?').get(key),
      audit: db.prepare('SELECT COUNT(*) AS n, MAX(seq) AS head FROM gov_activities').get(),
      files: fs.readdirSync(dataDir).sort(),
    });
    const before = snapshot();
    expect(before.call).toEqual({ status: 'running', instance_id: instance!.id });

    // The newcomer's second terminal, on another port so that only the lease can stop it.
    const second = await serveUntilExit(env);
    expect(second.code).toBe(1);
    expect(second.output).toContain(`already served by broker instance ${instance!.id} (pid ${live.child.pid}`);
    expect(second.output).toContain(`at ${live.url}`);
    expect(second.output).toContain('Nothing was changed');
    expect(snapshot()).toEqual(before);

    // CLI commands beside the live server keep working; they take no lease.
    const listed = await runCli(['calls', 'list', '--status', 'running'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).data).toEqual([expect.objectContaining({ request_id: key, status: 'running' })]);
    expect(db.prepare('SELECT id FROM broker_instances').all()).toEqual([{ id: instance!.id }]);

    live.release();
    const res = await inFlight;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ request_id: key, status: 'succeeded' });
    expect(db.prepare('SELECT status FROM ext_calls WHERE request_id = ?').get(key)).toEqual({ status: 'succeeded' });
    const audit = db.prepare('SELECT actor, kind FROM gov_activities WHERE subject = ? ORDER BY seq').all(`call:developer:${key}`);
    expect(audit).toEqual([
      { actor: 'developer', kind: 'call.claimed' },
      { actor: 'developer', kind: 'call.succeeded' },
    ]);
    expect(live.attempts.filter((id) => id === key)).toHaveLength(1);

    // A graceful stop releases the lease: the database can be served again at once.
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);
    expect(db.prepare('SELECT id FROM broker_instances').all()).toEqual([]);
    const next = await startServeProcess(env);
    children.push(next.child);
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
    expect(verifyChain(deps.db).ok).toBe(true);
  });
});

describe('recovery by lease (an engine serving replicas)', () => {
  it('takes over only the calls of instances whose lease expired, periodically, never a live one', async () => {
    const broker = await startBroker({ listen: false, env: { BROKER_LEASE_TTL_MS: '3000' } });
    try {
      const { deps, clock } = broker;
      const db = deps.db.sqlite;
      deps.db.singleServer = false; // as an engine built for replicas: other live leases are allowed
      const now = clock.now();
      const lease = db.prepare('INSERT INTO broker_instances (id, pid, host, url, started_at, lease_until) VALUES (?, 1, ?, NULL, ?, ?)');
      lease.run('live-replica', 'host-a', now - 1000, now + 10_000);
      lease.run('dead-replica', 'host-b', now - 60_000, now - 1);
      const call = db.prepare(
        `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, grant_id, status, receipt, created_at, instance_id)
         VALUES ('developer', ?, 'f', 'test.read', 1, 'acme/api', 's', 'grt_x', 'running', '{"steps":[]}', ?, ?)`,
      );
      call.run('of-live', now, 'live-replica');
      call.run('of-dead', now, 'dead-replica');
      call.run('of-nobody', now, null);
      call.run('of-self', now, deps.instanceId);
      const status = (id: string) => (db.prepare('SELECT status FROM ext_calls WHERE request_id = ?').get(id) as { status: string }).status;
      const instances = () => (db.prepare('SELECT id FROM broker_instances ORDER BY id').all() as { id: string }[]).map((r) => r.id);

      const lost: unknown[] = [];
      const instance = await startInstance(deps, (err) => lost.push(err));
      expect(['of-live', 'of-dead', 'of-nobody', 'of-self'].map(status)).toEqual(['running', 'unknown_outcome', 'unknown_outcome', 'running']);
      expect(instances()).toEqual([deps.instanceId, 'live-replica'].sort());

      // The live replica stops renewing; once its lease has expired, the next renewal tick recovers its call.
      clock.advance(10_001);
      await vi.waitFor(() => expect(status('of-live')).toBe('unknown_outcome'), { timeout: 20_000, interval: 50 });
      expect(status('of-self')).toBe('running');
      expect(instances()).toEqual([deps.instanceId]);
      const audit = db.prepare("SELECT subject, detail FROM gov_activities WHERE kind = 'call.unknown_outcome' ORDER BY seq").all() as { subject: string; detail: string }[];
      expect(audit.map((a) => [a.subject, JSON.parse(a.detail).instance])).toEqual([
        ['call:developer:of-dead', 'dead-replica'],
        ['call:developer:of-nobody', null],
        ['call:developer:of-live', 'live-replica'],
      ]);

      instance.release();
      expect(instances()).toEqual([]);
      expect(lost).toEqual([]);
      expect(verifyChain(deps.db).ok).toBe(true);
    } finally {
      await broker.stop();
    }
  });
});
