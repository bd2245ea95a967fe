/**
 * `POST /v1/ext/calls` through a real server with real RFC 9421 signatures: success and replay,
 * every refusal and denial code, deny-wins, the exact expiry instant (L2 and L3), task coupling,
 * the inflight lock, backpressure, retries, timeouts and redacted provider errors.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { approveTwice, auditKinds, call, grant, taskIn } from './helpers.js';
import { PROVIDER_SECRET, testProvider, type TestProvider } from './provider.js';

let broker: TestBroker;
let tp: TestProvider;
/** A fresh broker with a fresh test provider (grants never leak between tests). */
async function fresh(env: Record<string, string> = {}): Promise<void> {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider], env });
}
beforeEach(() => fresh());
afterEach(async () => {
  tp.release();
  expect((await broker.verifyChain()).ok).toBe(true);
  await broker.stop();
});

const steps = (body: { receipt: { steps: { step: string; result: string }[] } }) => body.receipt.steps.map((s) => `${s.step}:${s.result}`);

describe('a call that is allowed', () => {
  it('executes once, answers 200 with the receipt, and replays the same answer for the same key', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api' } }, key);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ request_id: key, status: 'succeeded', action: 'test.read', result: { resource: 'acme/api', attempt: 1 } });
    expect(typeof res.body.duration_ms).toBe('number');
    expect(steps(res.body)).toEqual([
      'signature:pass', 'request:pass', 'idempotency:pass', 'switch:pass', 'backpressure:pass', 'grant:pass', 'expiry:pass', 'level:pass', 'deny_list:pass',
      'allow_list:pass', 'resource:pass', 'task:skip', 'approval:skip', 'provider:pass', 'circuit:pass', 'limits:skip', 'claim:pass', 'execute:pass',
    ]);
    expect(res.headers.get('idempotent-replayed')).toBeNull();

    const again = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api' } }, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(res.body);
    expect(tp.attemptsOf(key)).toBe(1);
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.claimed', 'call.succeeded']);
  });

  it('shows the call to its group only (GET /v1/ext/calls/{id}); others get 404', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    await call(broker, 'developer', { action: 'test.read' }, key);
    const own = await broker.client('developer').get(`/v1/ext/calls/${key}`);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ request_id: key, group: 'developer', action: 'test.read', status: 'succeeded', http_status: 200, resource: 'acme/api' });
    expect(own.body.response.result.attempt).toBe(1);
    const other = await broker.client('security').get(`/v1/ext/calls/${key}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('not_found');
    const list = await broker.client('developer').get('/v1/ext/calls', { query: { status: 'succeeded' } });
    expect(list.body.data.map((c: { request_id: string }) => c.request_id)).toEqual([key]);
    expect((await broker.client('security').get('/v1/ext/calls')).body.data).toEqual([]);
  });

  it('lets operator and auditor tokens read the calls of every group at /v1/calls, and no group', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    await call(broker, 'developer', { action: 'test.read' }, key);
    const { token } = await broker.deps.tokens.mint('auditor', 'audrey', 3600);
    const read = (p: string) => fetch(`${broker.url}${p}`, { headers: { authorization: `Bearer ${token}` } });
    const list = await read('/v1/calls?group=developer&status=succeeded');
    expect(list.status).toBe(200);
    expect(((await list.json()) as { data: { request_id: string }[] }).data.map((c) => c.request_id)).toEqual([key]);
    const one = await read(`/v1/calls/developer/${key}`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { receipt: { decision: string } }).receipt.decision).toBe('allowed');
    expect((await read(`/v1/calls/security/${key}`)).status).toBe(404);
    expect((await broker.client('main').get('/v1/calls')).status).toBe(403);
  });

  it('refuses the same key with another body (422 idempotency_key_reused) without executing', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
    const res = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/web' } }, key);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('idempotency_key_reused');
    expect(tp.attempts).toHaveLength(1);
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.claimed', 'call.succeeded', 'call.rejected']);
  });
});

describe('request shape (step 2)', () => {
  it.each([
    ['an unknown action', 'unknown_action', 422, { action: 'test.nope' }],
    ['params of the wrong type', 'validation_failed', 422, { action: 'test.read', params: { resource: 42 } }],
    ['an unknown member', 'validation_failed', 422, { action: 'test.read', taskId: 'x' }],
  ])('%s answers %s (%i), audited, and leaves the key unused', async (_n, code, status, body) => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await call(broker, 'developer', body as never, key);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(res.body.receipt.decision).toBe('rejected');
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.rejected']);
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
  });

  it('answers a body that is not JSON with 400 malformed_json, audited, key unused', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await broker.client('developer').request('POST', '/v1/ext/calls', { rawBody: '{"action": ', idempotencyKey: key });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('malformed_json');
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.rejected']);
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
  });

  it('answers a lone UTF-16 surrogate in a param with 400 malformed_json before the decision, audited, key unused', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await broker.client('developer').request('POST', '/v1/ext/calls', { rawBody: '{"action": "test.read", "params": {"resource": "acme/\\ud800"}}', idempotencyKey: key });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'malformed_json', detail: expect.stringContaining('RFC 7493') });
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.rejected']);
    // A well-formed pair (an emoji, escaped) is fine.
    const pair = await broker.client('developer').request('POST', '/v1/ext/calls', { rawBody: '{"action": "test.read", "params": {"resource": "acme/\\ud83d\\ude00"}}', idempotencyKey: randomUUID() });
    expect(pair.status, JSON.stringify(pair.body)).toBe(200);
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
  });

  it('names the offending param path', async () => {
    const res = await call(broker, 'developer', { action: 'test.read', params: { fail: -1 } });
    expect(res.body.issues[0].path).toEqual(['params', 'fail']);
  });
});

describe('denials (steps 4–12): 403 problem+json with code, sentence and receipt, audited, key not used up', () => {
  /** Asserts a denial, its audit row, and that the same key works once the cause is fixed. */
  async function expectDenied(res: Awaited<ReturnType<typeof call>>, code: string, key: string, group = 'developer') {
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.code).toBe(code);
    expect(res.body.detail).toMatch(/\S+ \S+/);
    expect(res.body.receipt).toMatchObject({ decision: 'denied', code, request_id: key, group });
    expect(steps(res.body).at(-1)).toMatch(/:fail$/);
    expect(await auditKinds(broker, group, key)).toEqual(['call.denied']);
    expect(tp.attemptsOf(key)).toBe(0);
  }

  it('no_capability, then the same key passes once a grant arrives', async () => {
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.read' }, key), 'no_capability', key);
    await grant(broker, { level: 1 });
    const res = await call(broker, 'developer', { action: 'test.read' }, key);
    expect(res.status).toBe(200);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
  });

  it('insufficient_level', async () => {
    await grant(broker, { level: 1 });
    const task = await taskIn(broker, 'DOING');
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.write', task_id: task }, key), 'insufficient_level', key);
  });

  it('action_denied: a grant that allows and denies the same action denies it (deny-wins)', async () => {
    await grant(broker, { level: 1, allowed_actions: ['test.read'], denied_actions: ['test.read'] });
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.read' }, key), 'action_denied', key);
  });

  it('action_denied also wins over another grant that allows the action', async () => {
    await grant(broker, { level: 1 });
    await grant(broker, { level: 1, denied_actions: ['test.r*'] });
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.read' }, key), 'action_denied', key);
  });

  it('action_not_allowed', async () => {
    await grant(broker, { level: 2, allowed_actions: ['test.write'] });
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.read' }, key), 'action_not_allowed', key);
  });

  it('resource_out_of_scope', async () => {
    await grant(broker, { level: 1, resources: ['acme/*'] });
    expect((await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/api' } })).status).toBe(200);
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.read', params: { resource: 'other/api' } }, key), 'resource_out_of_scope', key);
  });

  it('task_required for an L2 action without task_id', async () => {
    await grant(broker, { level: 2 });
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.write' }, key), 'task_required', key);
  });

  it('task_not_found for an unknown task', async () => {
    await grant(broker, { level: 2 });
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.write', task_id: '01KNOTATASK0000000000000000' }, key), 'task_not_found', key);
  });

  it('task_state names the state, for every state but DOING and APPROVAL', async () => {
    await grant(broker, { level: 2 });
    for (const state of ['INBOX', 'TRIAGED', 'READY', 'REVIEW', 'DONE', 'BLOCKED'] as const) {
      const task = await taskIn(broker, state);
      const key = randomUUID();
      const res = await call(broker, 'developer', { action: 'test.write', task_id: task }, key);
      await expectDenied(res, 'task_state', key);
      expect(res.body.task_state).toBe(state);
      expect(res.body.detail).toContain(state);
    }
  });

  it('a task in DOING or APPROVAL assigned to the group passes, and the call shows in the task context', async () => {
    await grant(broker, { level: 2 });
    for (const state of ['DOING', 'APPROVAL'] as const) {
      const task = await taskIn(broker, state);
      const key = randomUUID();
      const res = await call(broker, 'developer', { action: 'test.write', task_id: task }, key);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(tp.attempts.at(-1)).toMatchObject({ requestId: key, taskId: task });
      const ctx = await broker.client('developer').get(`/v1/tasks/${task}/context`);
      expect(ctx.body.external_calls).toEqual([expect.objectContaining({ request_id: key, action: 'test.write', status: 'succeeded', task_id: task })]);
    }
  });

  it('task_not_assigned for a task of another group; main may couple as the coordinator', async () => {
    await grant(broker, { level: 2 });
    await grant(broker, { group: 'main', level: 2 });
    const task = await taskIn(broker, 'DOING', 'security');
    const key = randomUUID();
    await expectDenied(await call(broker, 'developer', { action: 'test.write', task_id: task }, key), 'task_not_assigned', key);
    expect((await call(broker, 'main', { action: 'test.write', task_id: task })).status).toBe(200);
  });

  it('approval_pending for an L3 grant without its two approvals', async () => {
    await grant(broker, { group: 'main', level: 3 });
    const task = await taskIn(broker, 'DOING');
    const key = randomUUID();
    await expectDenied(await call(broker, 'main', { action: 'test.deploy', task_id: task }, key), 'approval_pending', key, 'main');
  });

  it('provider_unavailable (503) when the host lacks the credentials, without using up the key', async () => {
    await grant(broker, { level: 1 });
    tp.setUnavailable('TEST_TOKEN is not set');
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read' }, key);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('provider_unavailable');
    expect(res.body.detail).toContain('TEST_TOKEN is not set');
    tp.setUnavailable(null);
    expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
  });
});

describe('expiry at the exact instant (ManualClock)', () => {
  it('L2: works 1 ms before expires_at and answers capability_expired at it', async () => {
    const g = await grant(broker, { level: 2, ttl_s: 3600 });
    const expiresAt = Date.parse(g.expires_at!);
    const task = await taskIn(broker, 'DOING');
    broker.clock.set(expiresAt - 1);
    expect((await call(broker, 'developer', { action: 'test.write', task_id: task })).status).toBe(200);
    broker.clock.set(expiresAt);
    const res = await call(broker, 'developer', { action: 'test.write', task_id: task });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('capability_expired');
  });

  it('L3: works once approved, 1 ms before expires_at, and answers capability_expired at it', async () => {
    const g = await grant(broker, { group: 'main', level: 3, ttl_s: 3600 });
    const task = await taskIn(broker, 'DOING');
    const approved = await approveTwice(broker, g);
    const expiresAt = Date.parse(approved.body.grant?.expires_at ?? approved.body.expires_at);
    expect(Number.isFinite(expiresAt)).toBe(true);
    expect((await call(broker, 'main', { action: 'test.deploy', task_id: task })).status).toBe(200);
    broker.clock.set(expiresAt - 1);
    expect((await call(broker, 'main', { action: 'test.deploy', task_id: task })).status).toBe(200);
    broker.clock.set(expiresAt);
    const res = await call(broker, 'main', { action: 'test.deploy', task_id: task });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('capability_expired');
  });
});

describe('the inflight lock and backpressure', () => {
  it('50 concurrent calls with one key execute exactly once; the others get 409 or the replay', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const body = { action: 'test.read', params: { wait: true } };
    const pending = Array.from({ length: 50 }, () => call(broker, 'developer', body, key));
    const settled: Awaited<ReturnType<typeof call>>[] = [];
    pending.forEach((p) => void p.then((r) => settled.push(r)));
    await tp.untilWaiting(1);
    while (settled.length < 49) await new Promise((r) => setTimeout(r, 5));
    // While the one execution is held, every twin is refused as in flight.
    for (const a of settled) {
      expect(a.status).toBe(409);
      expect(a.body.code).toBe('request_in_flight');
      expect(a.headers.get('retry-after')).toBe('1');
    }
    tp.release();
    const answers = await Promise.all(pending);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(tp.attemptsOf(key)).toBe(1);
    const replay = await call(broker, 'developer', body, key);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    expect(tp.attemptsOf(key)).toBe(1);
  });

  it('20 concurrent slow calls of one group: 5 accepted, 15 answered 429 with Retry-After; another group still passes', async () => {
    await grant(broker, { level: 1 });
    await grant(broker, { group: 'security', level: 1 });
    const slow = Array.from({ length: 20 }, () => call(broker, 'developer', { action: 'test.read', params: { wait: true } }));
    const settled: Awaited<ReturnType<typeof call>>[] = [];
    slow.forEach((p) => void p.then((r) => settled.push(r)));
    await tp.untilWaiting(2); // group concurrency 2: two run, three queue
    while (settled.length < 15) await new Promise((r) => setTimeout(r, 5));
    expect(settled.map((r) => r.status)).toEqual(Array(15).fill(429));
    for (const r of settled) {
      expect(r.body.code).toBe('backpressure');
      expect(r.headers.get('retry-after')).toBe('1');
    }
    const other = await call(broker, 'security', { action: 'test.read' });
    expect(other.status).toBe(200);
    const caps = await broker.client('developer').get('/v1/ext/capabilities');
    expect(caps.body.pending).toBe(5);
    tp.release();
    const all = await Promise.all(slow);
    expect(all.filter((r) => r.status === 200)).toHaveLength(5);
    expect(tp.attempts.filter((a) => a.group === 'developer')).toHaveLength(5);
  });
});

describe('outcomes and provider failures', () => {
  it('retries an idempotent action at most twice, with backoff', async () => {
    await grant(broker, { level: 1 });
    const ok = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read', params: { fail: 2 } }, ok);
    expect(res.status).toBe(200);
    expect(res.body.result.attempt).toBe(3);
    expect(tp.attemptsOf(ok)).toBe(3);
    const bad = randomUUID();
    const failed = await call(broker, 'developer', { action: 'test.read', params: { fail: 3 } }, bad);
    expect(failed.status).toBe(502);
    expect(failed.body).toMatchObject({ code: 'provider_error', provider_status: 503, provider_code: 'unavailable', call_status: 'failed' });
    expect(tp.attemptsOf(bad)).toBe(3);
  });

  it('never retries a non-idempotent action', async () => {
    await grant(broker, { level: 2 });
    const task = await taskIn(broker, 'DOING');
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.write', task_id: task, params: { fail: 1 } }, key);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('provider_error');
    expect(tp.attemptsOf(key)).toBe(1);
  });

  it('answers 502 provider_error with the provider status and code, secrets redacted everywhere, and replays it', async () => {
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read', params: { reject: true } }, key);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'provider_error', provider_status: 404, provider_code: 'not_found', request_id: key });
    expect(tp.attemptsOf(key)).toBe(1); // a 404 is not transient
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(PROVIDER_SECRET);
    expect(text).toContain('[REDACTED]');
    const audit = JSON.stringify((await broker.auditRows()).map((r) => r.detail));
    expect(audit).not.toContain(PROVIDER_SECRET);
    expect(broker.logs.join('')).not.toContain(PROVIDER_SECRET);
    const again = await call(broker, 'developer', { action: 'test.read', params: { reject: true } }, key);
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([502, 'true']);
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.claimed', 'call.failed']);
  });

  it('aborts an action past the provider timeout: 504 provider_timeout, stored as timed_out', async () => {
    await broker.stop();
    await fresh({ BROKER_PROVIDER_TIMEOUT_MS: '300' });
    await grant(broker, { level: 1 });
    const key = randomUUID();
    const res = await call(broker, 'developer', { action: 'test.read', params: { hang: true } }, key);
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'provider_timeout', call_status: 'timed_out', timeout_ms: 300 });
    expect((await broker.client('developer').get(`/v1/ext/calls/${key}`)).body.status).toBe('timed_out');
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.claimed', 'call.timed_out']);
  });
});

describe('GET /v1/ext/capabilities', () => {
  it('says per action whether the group may call it now, and the code when not', async () => {
    await grant(broker, { level: 1, denied_actions: ['test.read'] });
    await grant(broker, { level: 2, allowed_actions: ['test.write'] });
    const res = await broker.client('developer').get('/v1/ext/capabilities');
    expect(res.status).toBe(200);
    const byAction = Object.fromEntries(res.body.actions.map((a: { action: string }) => [a.action, a]));
    expect(byAction['test.read']).toMatchObject({ allowed: false, code: 'action_denied' });
    expect(byAction['test.write']).toMatchObject({ allowed: true, code: null, requires_task: true, level: 2 });
    expect(byAction['test.deploy']).toMatchObject({ allowed: false, code: 'insufficient_level' });
    // Each action's params as JSON Schema, allowed or not: strict, members with a default optional.
    expect(byAction['test.read'].params_schema).toMatchObject({ type: 'object', additionalProperties: false, properties: { resource: { type: 'string', minLength: 1 }, hang: { type: 'boolean' } } });
    expect(byAction['test.read'].params_schema).not.toHaveProperty('required');
    const none = await broker.client('security').get('/v1/ext/capabilities');
    expect(none.body.actions.every((a: { code: string }) => a.code === 'no_capability')).toBe(true);
  });
});

describe('fail-closed storage', () => {
  it('answers 503 audit_unavailable and executes nothing when the claim cannot be stored', async () => {
    await grant(broker, { level: 1 });
    const ro = await startBroker({ dataDir: broker.dataDir, readonlyDb: true, providers: [tp.provider] });
    try {
      const key = randomUUID();
      const res = await call(ro, 'developer', { action: 'test.read' }, key);
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('audit_unavailable');
      expect(tp.attempts).toHaveLength(0);
      expect(await auditKinds(broker, 'developer', key)).toEqual([]);
      // Nothing was used up: the same key succeeds on a broker that can write.
      expect((await call(broker, 'developer', { action: 'test.read' }, key)).status).toBe(200);
    } finally {
      await ro.stop();
    }
  });
});
