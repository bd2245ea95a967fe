/**
 * Kill switches through real parts: a switch of each scope set by another process (the real
 * `broker switches set` CLI on the same data directory) is seen by a real server at the next
 * call, which is refused with 503 `disabled_by_operator` naming the switch; nothing runs; clearing
 * restores; other groups, providers and actions are unaffected; an answered key still replays;
 * set and clear are audited with their reasons; `POST /v1/switches` is idempotent.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, grant } from '../calls/helpers.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { bearer, tokenFor } from '../grants/helpers.js';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

let broker: TestBroker;
let tp: TestProvider;
let cliEnv: Record<string, string>;
const cliActor = `operator:${os.userInfo().username.replace(/[^A-Za-z0-9._@-]/g, '_') || 'unknown'}`;

beforeAll(async () => {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider] });
  cliEnv = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn', ...broker.databaseEnv };
  await grant(broker, { level: 1 });
  const sec = await broker.client('main').post('/v1/grants', { group: 'security', provider: 'test', level: 1, reason: 'switch tests' });
  expect(sec.status, JSON.stringify(sec.body)).toBe(201);
});
afterEach(async () => {
  // Every test leaves no switch active.
  for (const row of (await broker.deps.stores.switches.list({ active: true, limit: 200 })).rows) {
    expect((await runCli(['switches', 'clear', row.id, '--reason', 'test cleanup'], cliEnv)).code).toBe(0);
  }
});
afterAll(async () => {
  expect((await broker.verifyChain()).ok).toBe(true);
  await broker.stop();
});

/** `broker switches set <scope> [target] --reason <reason>` in a child process; the switch it printed. */
async function cliSet(scope: string, target: string | null, reason: string): Promise<{ id: string; scope: string; target: string | null }> {
  const out = await runCli(['switches', 'set', scope, ...(target === null ? [] : [target]), '--reason', reason], cliEnv);
  expect(out.code, out.stderr).toBe(0);
  return JSON.parse(out.stdout);
}
async function cliClear(id: string, reason: string): Promise<void> {
  const out = await runCli(['switches', 'clear', id, '--reason', reason], cliEnv);
  expect(out.code, out.stderr).toBe(0);
}
const read = (group: string, key = randomUUID()) => call(broker, group, { action: 'test.read', params: { resource: 'acme/api' } }, key);
const auditOf = async (id: string) => (await broker.auditRows(id)).map((r) => ({ actor: r.actor, kind: r.kind, detail: JSON.parse(r.detail) }));

describe('a kill switch set by another process', () => {
  const cases: { scope: string; target: string | null }[] = [
    { scope: 'all', target: null },
    { scope: 'group', target: 'developer' },
    { scope: 'provider', target: 'test' },
    { scope: 'action', target: 'test.read' },
  ];
  for (const { scope, target } of cases) {
    it(`(${scope}${target ? ` ${target}` : ''}) refuses the next call with 503 disabled_by_operator naming it; clearing restores`, async () => {
      const key = randomUUID();
      const sw = await cliSet(scope, target, `incident ${scope}`);
      const before = tp.attempts.length;
      const res = await read('developer', key);
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('disabled_by_operator');
      expect(res.body.switch).toEqual({ id: sw.id, scope, target, reason: `incident ${scope}`, set_by: cliActor, since: expect.any(String) });
      expect(res.body.detail).toContain(sw.id);
      expect(res.body.receipt.decision).toBe('denied');
      expect(res.body.receipt.steps.map((s: { step: string; result: string }) => `${s.step}:${s.result}`)).toEqual(['signature:pass', 'request:pass', 'idempotency:pass', 'switch:fail']);
      expect(tp.attempts.length).toBe(before);

      await cliClear(sw.id, `resolved ${scope}`);
      const again = await read('developer', key); // the refusal did not use up the key
      expect(again.status).toBe(200);
      expect(again.body.receipt.steps).toContainEqual({ step: 'switch', result: 'pass', note: 'no switch' });

      expect(await auditOf(sw.id)).toEqual([
        { actor: cliActor, kind: 'switch.set', detail: { scope, target, reason: `incident ${scope}` } },
        { actor: cliActor, kind: 'switch.cleared', detail: { scope, target, reason: `resolved ${scope}` } },
      ]);
      const refusal = await broker.auditRows(`call:developer:${key}`);
      expect(refusal.map((r) => r.kind)).toEqual(['call.denied', 'call.claimed', 'call.succeeded']);
    });
  }

  it('leaves other groups, providers and actions running', async () => {
    await cliSet('group', 'security', 'security paused');
    await cliSet('provider', 'github', 'github paused');
    await cliSet('action', 'test.write', 'writes paused');
    expect((await read('developer')).status).toBe(200);
    expect((await read('security')).body.code).toBe('disabled_by_operator');
    const write = await call(broker, 'developer', { action: 'test.write', params: {} });
    expect(write.body.code).toBe('disabled_by_operator');
    expect(write.body.switch.target).toBe('test.write');
  });

  it('still replays a key answered before the switch; a new key is refused', async () => {
    const key = randomUUID();
    expect((await read('developer', key)).status).toBe(200);
    await cliSet('all', null, 'freeze');
    const replay = await read('developer', key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await read('developer')).status).toBe(503);
  });

  it("shows in the agents' capabilities: the switched-off action is disabled_by_operator naming the switch, the others as before", async () => {
    const caps = async () => (await broker.client('developer').get('/v1/ext/capabilities')).body.actions as { action: string; allowed: boolean; code: string | null; detail: string | null }[];
    const of = (all: Awaited<ReturnType<typeof caps>>, id: string) => all.find((a) => a.action === id)!;
    const before = await caps();
    expect(of(before, 'test.read')).toMatchObject({ allowed: true, code: null });
    const sw = await cliSet('action', 'test.read', 'reads paused');
    const during = await caps();
    expect(of(during, 'test.read')).toMatchObject({ allowed: false, code: 'disabled_by_operator' });
    expect(of(during, 'test.read').detail).toContain(sw.id);
    for (const a of during.filter((x) => x.action !== 'test.read')) expect(a).toEqual(before.find((b) => b.action === a.action));
    await cliClear(sw.id, 'reads resume');
    expect(of(await caps(), 'test.read')).toMatchObject({ allowed: true, code: null });
  });

  it('does not touch grants', async () => {
    const grants = () => broker.rows('SELECT id, status FROM grants ORDER BY id');
    const grantsBefore = await grants();
    const sw = await cliSet('all', null, 'freeze');
    await cliClear(sw.id, 'thaw');
    expect(await grants()).toEqual(grantsBefore);
  });
});

describe('the /v1/switches routes', () => {
  it('set (idempotent on Idempotency-Key), list and clear as an operator; an auditor reads only', async () => {
    const operator = await tokenFor(broker, 'operator', 'olga');
    const auditor = await tokenFor(broker, 'auditor', 'audrey');
    const idem = randomUUID();
    const body = { scope: 'group', target: 'developer', reason: 'http switch' };
    const set = await bearer(broker, operator, 'POST', '/v1/switches', { json: body, idempotencyKey: idem });
    expect(set.status).toBe(201);
    expect(set.body).toMatchObject({ scope: 'group', target: 'developer', set_by: 'operator:olga', active: true });
    const replay = await bearer(broker, operator, 'POST', '/v1/switches', { json: body, idempotencyKey: idem });
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(set.body.id);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect((await bearer(broker, operator, 'POST', '/v1/switches', { json: { ...body, reason: 'other' }, idempotencyKey: idem })).body.code).toBe('idempotency_key_reused');
    expect((await broker.deps.stores.switches.list({ active: true, limit: 10 })).rows.map((r) => r.id)).toEqual([set.body.id]);
    expect((await read('developer')).body.code).toBe('disabled_by_operator');

    expect((await bearer(broker, auditor, 'POST', '/v1/switches', { json: body, idempotencyKey: randomUUID() })).status).toBe(403);
    const listed = await bearer(broker, auditor, 'GET', '/v1/switches?active=true');
    expect(listed.body.data.map((s: { id: string }) => s.id)).toEqual([set.body.id]);
    expect((await bearer(broker, auditor, 'POST', `/v1/switches/${set.body.id}/clear`, { json: { reason: 'x' }, idempotencyKey: randomUUID() })).status).toBe(403);
    const cleared = await bearer(broker, operator, 'POST', `/v1/switches/${set.body.id}/clear`, { json: { reason: 'http clear' }, idempotencyKey: randomUUID() });
    expect(cleared.body).toMatchObject({ id: set.body.id, active: false, cleared_by: 'operator:olga', clear_reason: 'http clear' });
    expect((await read('developer')).status).toBe(200);
  });
});
