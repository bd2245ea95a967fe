/**
 * A held call and a crash, with real processes: the second approval claims the call and it starts
 * running; the broker is killed (SIGKILL) before the outcome; the restarted broker records it
 * `unknown_outcome` (crash recovery, as for any claimed call), the key replays 502
 * `unknown_outcome`, a further approval is 409 `call_not_awaiting_approval`, and the action was
 * executed exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { BrokerClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/platform/config.js';
import { closeDeps, createDeps, sqliteDeps, type SqliteDeps } from '../../src/app/deps.js';
import { createLogger } from '../../src/platform/log.js';
import { addApprover, generateApproverKey } from '../../src/modules/grants/approvers.js';
import { signCallApproval } from '../../src/modules/calls/approval/request.js';
import { policiesWith, tempDir } from '../helpers/harness.js';
import { serveFixture as serve } from './served.js';

describe('a broker killed while an approved held call runs', () => {
  const dataDir = tempDir('broker-held-crash-');
  const env = {
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: policiesWith({ 'approvals.json': { per_call: { 'test.read': { ttl_s: 3600 } } } }),
    BROKER_HOST: '127.0.0.1',
    BROKER_PORT: '0',
    BROKER_LOG_LEVEL: 'info',
  };
  let deps: SqliteDeps | undefined;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (deps) await closeDeps(deps);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('records it unknown_outcome after the restart and never runs it twice', async () => {
    const first = await serve(env);
    children.push(first.child);
    deps = sqliteDeps(await createDeps(loadConfig({ ...env }), { logger: createLogger('silent') }));
    const client = (group: string, url: string) => {
      const key = deps!.keys.current(group);
      return new BrokerClient({ baseUrl: url, credential: { keyid: key.keyid, secret: key.secret } });
    };
    expect((await client('main', first.url).post('/v1/grants', { group: 'developer', provider: 'test', level: 1, reason: 'held crash' })).status).toBe(201);
    const operator = (await deps.tokens.mint('operator', 'olga', 3600)).token;
    const approvers: Awaited<ReturnType<typeof generateApproverKey>>[] = [];
    for (const [id, group] of [['hc-sec', 'security'], ['hc-sre', 'sre'], ['hc-dev', 'main']] as const) {
      const k = await generateApproverKey(id);
      await addApprover(deps, { id, group, publicJwk: k.publicJwk }, 'operator:test');
      approvers.push(k);
    }

    const key = randomUUID();
    const body = { action: 'test.read', params: { wait: true } };
    const held = await client('developer', first.url).post('/v1/ext/calls', body, { idempotencyKey: key });
    expect(held.status, JSON.stringify(held.body)).toBe(202);
    const approve = async (url: string, i: number) => {
      const jws = await signCallApproval(approvers[i]!.privateJwk, { group: 'developer', request_id: key, request_digest: held.body.request_digest }, Date.now(), 600);
      return fetch(new URL(`/v1/calls/developer/${key}/approvals`, url), {
        method: 'POST',
        headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/jose', 'idempotency-key': randomUUID() },
        body: jws,
      });
    };
    expect((await approve(first.url, 0)).status).toBe(200);
    const lost = approve(first.url, 1).catch((err: Error) => err);
    await first.attempted(key);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(await lost).toBeInstanceOf(Error);
    const status = () => (deps!.db.sqlite.prepare('SELECT status FROM ext_calls WHERE "group" = ? AND request_id = ?').get('developer', key) as { status: string }).status;
    expect(status()).toBe('running');

    const second = await serve(env);
    children.push(second.child);
    expect(status()).toBe('unknown_outcome');
    const replay = await client('developer', second.url).post('/v1/ext/calls', body, { idempotencyKey: key });
    expect(replay.status).toBe(502);
    expect(replay.body).toMatchObject({ code: 'unknown_outcome', call_status: 'unknown_outcome' });
    const again = await approve(second.url, 2);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'call_not_awaiting_approval', call_status: 'unknown_outcome' });
    expect([...first.attempts, ...second.attempts].filter((id) => id === key)).toHaveLength(1);
    const kinds = (deps.db.sqlite.prepare('SELECT kind FROM gov_activities WHERE subject = ? ORDER BY seq').all(`call:developer:${key}`) as { kind: string }[]).map((r) => r.kind);
    expect(kinds).toEqual(['call.held', 'call.approval_recorded', 'call.approval_recorded', 'call.approved', 'call.unknown_outcome', 'call.approval_refused']);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(verifyChain(deps.db).ok).toBe(true);
  });
});
