/**
 * Webhook notifications end to end, with real parts: a real `broker serve` process, the real CLI
 * on the same database, real signed agent calls, and a real receiver on 127.0.0.1 that verifies
 * every Standard Webhooks signature. The receiver answers 503 for a while, then is gone
 * (connection refused) while the broker is killed (SIGKILL) and an event is written with no broker
 * serving; then both come back. Every event arrives, and after de-duplication by `webhook-id`
 * exactly once; `broker webhooks deliveries` shows them delivered.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/client/index.js';
import { closeDeps, createDeps, type Deps } from '../../src/app/deps.js';
import { loadConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';
import { Receiver, until } from './receiver.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

interface DeliveryJson {
  id: string;
  event_id: string;
  type: string;
  status: string;
  attempts: number;
}

describe('webhooks through a receiver outage and a broker crash', () => {
  const dataDir = tempDir('broker-webhooks-');
  const policiesDir = tempDir('broker-webhook-policies-');
  const receiver = new Receiver(SECRET);
  const env: Record<string, string> = {
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: policiesDir,
    BROKER_LOG_LEVEL: 'info',
    BROKER_TEST_WEBHOOK_SECRET: SECRET,
  };
  const serving: ServeProcess[] = [];
  let deps: Deps | undefined;

  afterAll(async () => {
    for (const s of serving) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    if (deps) await closeDeps(deps);
    await receiver.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(policiesDir, { recursive: true, force: true });
  });

  const cli = async (...args: string[]) => {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`broker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const deliveries = async (): Promise<DeliveryJson[]> => (JSON.parse(await cli('webhooks', 'deliveries', '--limit', '200')) as { data: DeliveryJson[] }).data;

  it('delivers every event exactly once after de-duplication, losing nothing', async () => {
    await receiver.start();
    receiver.mode = 'unavailable';
    for (const f of fs.readdirSync(path.join(REPO_ROOT, 'policies'))) if (f.endsWith('.json') && !f.includes('example')) fs.copyFileSync(path.join(REPO_ROOT, 'policies', f), path.join(policiesDir, f));
    fs.writeFileSync(
      path.join(policiesDir, 'webhooks.json'),
      JSON.stringify({
        endpoints: [{ id: 'receiver', url: receiver.url, secret_env: 'BROKER_TEST_WEBHOOK_SECRET', events: ['grant.awaiting_approval', 'grant.activated', 'grant.revoked', 'grant.expiring', 'calls.refused_burst'] }],
        refused_burst: { threshold: 3, window_s: 86_400 },
        expiring_within_s: 3600,
        delivery: { max_attempts: 100, initial_delay_ms: 20, max_delay_ms: 300, timeout_ms: 2000, poll_ms: 50 },
      }),
    );
    serving.push(await startServeProcess(env));
    const broker = serving[0]!;

    // Grants written by the CLI (another process on the same database).
    const l2 = JSON.parse(await cli('grants', 'create', '--group', 'developer', '--provider', 'github', '--level', '2', '--reason', 'webhook test L2')) as { id: string };
    await cli('grants', 'create', '--group', 'main', '--provider', 'github', '--level', '3', '--reason', 'webhook test L3');
    await cli('grants', 'create', '--group', 'security', '--provider', 'github', '--level', '1', '--ttl', '30m', '--reason', 'expires soon');
    await cli('grants', 'revoke', l2.id, '--reason', 'webhook test');
    // Three refused agent calls of one group: one burst.
    deps = await createDeps(loadConfig({ ...env }), { logger: createLogger('silent') });
    const key = deps.keys.current('main');
    const agent = new BrokerClient({ baseUrl: broker.url, credential: { keyid: key.keyid, secret: key.secret } });
    for (let i = 0; i < 4; i++) {
      const r = await agent.post('/v1/ext/calls', { action: 'cloudlogs.query_entries', params: { filter: 'x' } }, { idempotencyKey: `refused-${i}` });
      expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
    }

    // While the receiver answers 503, the deliveries are kept pending and retried.
    const expected = ['calls.refused_burst', 'grant.activated', 'grant.activated', 'grant.awaiting_approval', 'grant.expiring', 'grant.revoked'];
    await until('every event to be fanned out and tried', async () => {
      const rows = await deliveries();
      return rows.length === expected.length && rows.every((d) => d.status === 'pending' && d.attempts >= 1);
    });
    expect((await deliveries()).map((d) => d.type).sort()).toEqual(expected);
    expect(receiver.refused).toBeGreaterThanOrEqual(expected.length);

    // The receiver goes away (connection refused) and the broker crashes; an event is written with no broker serving.
    await receiver.stop();
    broker.child.kill('SIGKILL');
    await broker.exited;
    await cli('grants', 'create', '--group', 'developer', '--provider', 'github', '--level', '2', '--reason', 'while the broker is down');

    receiver.mode = 'up';
    await receiver.start();
    serving.push(await startServeProcess(env));
    const all = [...expected, 'grant.activated'].sort();
    const done = await until('every delivery to be delivered', async () => {
      const rows = await deliveries();
      return rows.length === all.length && rows.every((d) => d.status === 'delivered') ? rows : null;
    });
    expect(done.map((d) => d.type).sort()).toEqual(all);
    const unique = receiver.unique();
    expect(receiver.bad).toEqual([]);
    expect([...unique.keys()].sort()).toEqual(done.map((d) => d.event_id).sort());
    expect([...unique.values()].map((r) => r.body.type).sort()).toEqual(all);
    // The payload names what happened, never a secret.
    const burst = [...unique.values()].find((r) => r.body.type === 'calls.refused_burst')!;
    expect(burst.body.data).toMatchObject({ subject: 'group:main', detail: { group: 'main', refusals: 3 } });
    const expiring = [...unique.values()].find((r) => r.body.type === 'grant.expiring')!;
    expect(expiring.body.data).toMatchObject({ detail: { group: 'security', level: 1 } });
    expect(JSON.stringify([...unique.values()])).not.toContain(SECRET);
  }, 240_000); // two broker starts and a dozen CLI processes on a shared 2-core machine
});
