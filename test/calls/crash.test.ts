/**
 * Crash recovery with real processes: a broker process is killed (SIGKILL) while a call runs; once
 * its instance lease has run out, the restarted process marks it `unknown_outcome` (audited), never executes it again, replays 502
 * `unknown_outcome` for its key, and `broker calls list --status unknown_outcome` shows it.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { BrokerClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/platform/config.js';
import { closeDeps, createDeps, sqliteDeps, type SqliteDeps } from '../../src/app/deps.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { serveFixture as serve } from './served.js';

describe('a broker killed while a call runs', () => {
  const dataDir = tempDir('broker-crash-');
  // The default instance lease (15 s): the restart must not wait for the killed process's lease,
  // since that process is certainly gone (same host, no such pid).
  const env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_HOST: '127.0.0.1', BROKER_PORT: '0', BROKER_LOG_LEVEL: 'info' };
  let deps: SqliteDeps | undefined;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (deps) await closeDeps(deps);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('turns the call into unknown_outcome after restart and never executes it twice', async () => {
    const first = await serve(env);
    children.push(first.child);
    // The test process reads the same data directory (keys, rows) but never serves calls.
    deps = sqliteDeps(await createDeps(loadConfig({ ...env }), { logger: createLogger('silent') }));
    const client = (group: string, url: string) => {
      const key = deps!.keys.current(group);
      return new BrokerClient({ baseUrl: url, credential: { keyid: key.keyid, secret: key.secret } });
    };
    const g = await client('main', first.url).post('/v1/grants', { group: 'developer', provider: 'test', level: 1, reason: 'crash test' });
    expect(g.status, JSON.stringify(g.body)).toBe(201);

    const key = randomUUID();
    const body = { action: 'test.read', params: { wait: true } };
    const lost = client('developer', first.url).post('/v1/ext/calls', body, { idempotencyKey: key }).catch((err: Error) => err);
    await first.attempted(key);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(await lost).toBeInstanceOf(Error);
    const status = () => (deps!.db.sqlite.prepare('SELECT status FROM ext_calls WHERE "group" = ? AND request_id = ?').get('developer', key) as { status: string }).status;
    expect(status()).toBe('running');
    const lease = deps.db.sqlite.prepare('SELECT id, lease_until AS leaseUntil FROM broker_instances').all() as { id: string; leaseUntil: number }[];
    expect(lease).toHaveLength(1);
    const owner = deps.db.sqlite.prepare('SELECT instance_id AS id FROM ext_calls WHERE "group" = ? AND request_id = ?').get('developer', key) as { id: string };
    expect(owner.id).toBe(lease[0]!.id);

    expect(lease[0]!.leaseUntil).toBeGreaterThan(Date.now()); // still unexpired: the restart does not wait for it
    const second = await serve(env);
    children.push(second.child);
    expect(status()).toBe('unknown_outcome');
    const replay = await client('developer', second.url).post('/v1/ext/calls', body, { idempotencyKey: key });
    expect(replay.status).toBe(502);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toMatchObject({ code: 'unknown_outcome', call_status: 'unknown_outcome', request_id: key, action: 'test.read' });
    expect(replay.body.detail).toMatch(/new Idempotency-Key/);
    expect([...first.attempts, ...second.attempts].filter((id) => id === key)).toHaveLength(1);

    const audit = deps.db.sqlite.prepare("SELECT actor, kind FROM gov_activities WHERE subject = ? ORDER BY seq").all(`call:developer:${key}`);
    expect(audit).toEqual([
      { actor: 'developer', kind: 'call.claimed' },
      { actor: 'system', kind: 'call.unknown_outcome' },
    ]);
    const listed = await runCli(['calls', 'list', '--status', 'unknown_outcome'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).data).toEqual([expect.objectContaining({ request_id: key, group: 'developer', status: 'unknown_outcome', http_status: 502 })]);

    expect(deps.db.sqlite.prepare('SELECT id FROM broker_instances').all()).toHaveLength(1); // the dead lease is gone, the live one stays
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(deps.db.sqlite.prepare('SELECT id FROM broker_instances').all()).toEqual([]); // released at the graceful stop
    expect(verifyChain(deps.db).ok).toBe(true);
  });
});
