/**
 * Every route's real answers match its contract: a real broker on an ephemeral port is driven
 * through a success and at least one error of every route, as the principals the route serves
 * (signing groups, operator and auditor tokens) and some it refuses, and each answer is checked
 * against the contract the route file declares (`ContractChecker`: declared status, media type,
 * body schema, headers). The last test fails when any route was not checked with both a success
 * and an error, so a route added tomorrow without a case here fails the file.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/app.js';
import { generateApproverKey, addApprover, signApproval } from '../../src/modules/grants/approvers.js';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { bearer, tokenFor } from '../grants/helpers.js';
import { testProvider } from '../calls/provider.js';
import { approveTwice, taskIn } from '../calls/helpers.js';
import { Kernel } from '../kernel/helpers.js';
import { policiesWith, startBroker } from '../helpers/harness.js';
import { runOutboxBatch } from '../../src/platform/outbox/consumer.js';
import { fanOut } from '../../src/modules/webhooks/fanout.js';
import { EVENT_TYPES } from '../../src/modules/webhooks/policy.js';
import { signCallApproval } from '../../src/modules/calls/approval/request.js';
import { ContractChecker, contractsOf, type Answer } from './contracts.js';

const provider = testProvider();
// test.deploy is held for per-call approval here (the repository's policy holds GitHub actions).
const broker = await startBroker({ providers: [provider.provider], env: { BROKER_POLICIES_DIR: policiesWith({ 'approvals.json': { per_call: { 'test.deploy': { ttl_s: 3600 } } } }) } });
afterAll(() => broker.stop());
const operator = await tokenFor(broker, 'operator', 'contracts-olga');
const auditor = await tokenFor(broker, 'auditor', 'contracts-ada');
const checker = new ContractChecker(contractsOf(createApp(broker.deps)));
const kernel = new Kernel(broker);

type Opts = { json?: unknown; rawBody?: string; query?: Record<string, string | number | undefined>; headers?: Record<string, string>; idempotencyKey?: string };

/** A signed request as `group`, checked against `key`'s contract. */
async function signed(key: string, group: string, path: string, opts: Opts = {}): Promise<Answer & { body: any }> {
  const method = key.split(' ')[0]!;
  return checker.check(key, await broker.client(group).request(method, path, opts));
}

/** A bearer request as `role`, checked against `key`'s contract. */
async function token(key: string, role: 'operator' | 'auditor', path: string, opts: { json?: unknown; idempotencyKey?: string } = {}): Promise<Answer & { body: any }> {
  const method = key.split(' ')[0]!;
  return checker.check(key, await bearer(broker, role === 'operator' ? operator : auditor, method, path, opts));
}

/** An unauthenticated GET, checked against `key`'s contract. */
async function open(key: string, path: string): Promise<Answer & { body: any }> {
  const res = await fetch(new URL(path, broker.url));
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text);
  return checker.check(key, { status: res.status, headers: res.headers, body });
}

/** A GET that declares a body over the body limit (`Content-Length`), answered 413 before any route runs. */
function oversized(key: string, path: string): Promise<Answer> {
  const url = new URL(path, broker.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method: 'GET', headers: { 'content-length': String(broker.deps.config.bodyLimitBytes + 1), connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers(Object.entries(res.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : v] as [string, string]])));
        resolve(checker.check(key, { status: res.statusCode!, headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('operations and reference (no credentials)', () => {
  for (const [key, path] of [
    ['GET /health', '/health'],
    ['GET /ready', '/ready'],
    ['GET /metrics', '/metrics'],
    ['GET /openapi.json', '/openapi.json'],
    ['GET /docs', '/docs'],
    ['GET /docs/scalar.js', '/docs/scalar.js'],
  ] as const) {
    it(`${key}: 200, and 413 payload_too_large`, async () => {
      expect((await open(key, path)).status).toBe(200);
      expect((await oversized(key, path)).status).toBe(413);
    });
  }
});

describe('readiness refused', () => {
  it('GET /ready: 503 not_ready with reasons and providers when the database takes no writes', async () => {
    const ro = await startBroker({ dataDir: broker.dataDir, readonlyDb: true, providers: [provider.provider] });
    try {
      const res = await fetch(new URL('/ready', ro.url));
      const body = (await res.json()) as Record<string, unknown>;
      checker.check('GET /ready', { status: res.status, headers: res.headers, body });
      expect(body).toMatchObject({ code: 'not_ready', reasons: [expect.stringContaining('not writable')] });
    } finally {
      await ro.stop();
    }
  });
});

describe('identity', () => {
  it('GET /v1/whoami: 200 for a group, 403 for a token, 401 without credentials', async () => {
    expect((await signed('GET /v1/whoami', 'developer', '/v1/whoami')).body).toMatchObject({ group: 'developer' });
    expect((await token('GET /v1/whoami', 'operator', '/v1/whoami')).status).toBe(403);
    expect((await open('GET /v1/whoami', '/v1/whoami')).status).toBe(401);
  });
});

describe('tokens', () => {
  it('POST /v1/tokens/revocations: 201, a replay, 200 already revoked, 422', async () => {
    const key = randomUUID();
    const json = { jti: `contracts-${randomUUID()}`, reason: 'lost laptop' };
    expect((await token('POST /v1/tokens/revocations', 'operator', '/v1/tokens/revocations', { json, idempotencyKey: key })).status).toBe(201);
    const replay = await token('POST /v1/tokens/revocations', 'operator', '/v1/tokens/revocations', { json, idempotencyKey: key });
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect((await token('POST /v1/tokens/revocations', 'operator', '/v1/tokens/revocations', { json })).status).toBe(200);
    expect((await token('POST /v1/tokens/revocations', 'operator', '/v1/tokens/revocations', { json: {} })).status).toBe(422);
    expect((await token('POST /v1/tokens/revocations', 'auditor', '/v1/tokens/revocations', { json })).status).toBe(403);
  });

  it('GET /v1/tokens/revocations: 200, 422 for a cursor it did not give', async () => {
    expect((await token('GET /v1/tokens/revocations', 'auditor', '/v1/tokens/revocations?limit=1')).body.data).toHaveLength(1);
    expect((await token('GET /v1/tokens/revocations', 'auditor', '/v1/tokens/revocations?cursor=garbage')).status).toBe(422);
  });
});

describe('audit', () => {
  it('GET /v1/audit: 200 with next_cursor and next_since, 422, 403 for a group', async () => {
    const page = await token('GET /v1/audit', 'auditor', '/v1/audit?limit=1');
    expect(page.body).toMatchObject({ has_more: true, next_cursor: expect.any(String), next_since: expect.any(Number) });
    expect((await token('GET /v1/audit', 'auditor', '/v1/audit?since=-1')).status).toBe(422);
    expect((await signed('GET /v1/audit', 'main', '/v1/audit')).status).toBe(403);
  });
});

describe('grants', () => {
  let l1: { id: string };
  let l3: { id: string; digest: string };

  it('POST /v1/grants: 201, 422, 403', async () => {
    l1 = (await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'developer', provider: 'test', level: 1, reason: 'contracts' } })).body;
    l3 = (await token('POST /v1/grants', 'operator', '/v1/grants', { json: { group: 'main', provider: 'test', level: 3, reason: 'contracts' } })).body;
    expect(l3).toMatchObject({ status: 'pending_approval' });
    expect((await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'developer', provider: 'test', level: 3, reason: 'above the ceiling' } })).body.code).toBe('level_above_ceiling');
    expect((await signed('POST /v1/grants', 'main', '/v1/grants', { json: {} })).status).toBe(422);
    expect((await signed('POST /v1/grants', 'developer', '/v1/grants', { json: {} })).status).toBe(403);
  });

  it('GET /v1/grants: 200, 422', async () => {
    expect((await token('GET /v1/grants', 'auditor', '/v1/grants?limit=1')).body).toMatchObject({ has_more: true });
    expect((await token('GET /v1/grants', 'auditor', '/v1/grants?status=nope')).status).toBe(422);
  });

  it('GET /v1/grants/{id}: 200 with the timeline, 404', async () => {
    expect((await token('GET /v1/grants/:id', 'operator', `/v1/grants/${l1.id}`)).body.timeline.length).toBeGreaterThan(0);
    expect((await token('GET /v1/grants/:id', 'operator', '/v1/grants/grt_nope')).status).toBe(404);
  });

  it('PATCH /v1/grants/{id}: 200 for a pending grant, 409 grant_not_pending for an active one', async () => {
    l3 = (await signed('PATCH /v1/grants/:id', 'main', `/v1/grants/${l3.id}`, { json: { reason: 'contracts, amended' } })).body;
    expect((await token('PATCH /v1/grants/:id', 'operator', `/v1/grants/${l1.id}`, { json: { reason: 'too late' } })).body.code).toBe('grant_not_pending');
  });

  it('POST /v1/grants/{id}/approvals: 200 recorded, activated (JSON and application/jose), replayed; 422 approval_invalid, 404', async () => {
    const sign = async (approver: Awaited<ReturnType<typeof generateApproverKey>>, grantId: string) => {
      const iat = Math.floor(broker.clock.now() / 1000);
      return signApproval(approver.privateJwk, { grant_id: grantId, grant_digest: l3.digest, decision: 'approve', iat, exp: iat + 600 });
    };
    const keys = [];
    for (const [id, group] of [['contracts-sec', 'security'], ['contracts-dev', 'developer']] as const) {
      const k = await generateApproverKey(id);
      await addApprover(broker.deps, { id, group, publicJwk: k.publicJwk }, 'operator:test');
      keys.push(k);
    }
    const first = await sign(keys[0]!, l3.id);
    expect((await signed('POST /v1/grants/:id/approvals', 'main', `/v1/grants/${l3.id}/approvals`, { json: { jws: first } })).body.outcome).toBe('recorded');
    const second = await signed('POST /v1/grants/:id/approvals', 'main', `/v1/grants/${l3.id}/approvals`, { rawBody: await sign(keys[1]!, l3.id), headers: { 'content-type': 'application/jose' } });
    expect(second.body).toMatchObject({ outcome: 'activated', grant: { status: 'active' } });
    expect((await token('POST /v1/grants/:id/approvals', 'operator', `/v1/grants/${l3.id}/approvals`, { json: { jws: first } })).body.outcome).toBe('replayed');
    expect((await signed('POST /v1/grants/:id/approvals', 'main', `/v1/grants/${l3.id}/approvals`, { rawBody: '', headers: { 'content-type': 'application/jose' } })).body.code).toBe('approval_invalid');
    expect((await token('POST /v1/grants/:id/approvals', 'operator', '/v1/grants/grt_nope/approvals', { json: { jws: await sign(keys[0]!, 'grt_nope') } })).status).toBe(404);
  });

  it('POST /v1/grants/{id}/revoke: 200, 404', async () => {
    const g = (await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'security', provider: 'test', level: 1, reason: 'to revoke' } })).body;
    expect((await signed('POST /v1/grants/:id/revoke', 'main', `/v1/grants/${g.id}/revoke`, { json: { reason: 'done' } })).body.status).toBe('revoked');
    expect((await token('POST /v1/grants/:id/revoke', 'operator', '/v1/grants/grt_nope/revoke', { json: {} })).status).toBe(404);
  });
});

describe('grant requests', () => {
  let asked: { id: string };

  it('POST /v1/grant-requests: 201, a replay, 422 level_above_ceiling, 403 for a token', async () => {
    const key = randomUUID();
    const json = { provider: 'test', level: 1, allowed_actions: ['test.read'], resources: ['acme/*'], ttl_s: 600, justification: 'contracts' };
    asked = (await signed('POST /v1/grant-requests', 'developer', '/v1/grant-requests', { json, idempotencyKey: key })).body;
    expect(asked).toMatchObject({ status: 'pending' });
    expect((await signed('POST /v1/grant-requests', 'developer', '/v1/grant-requests', { json, idempotencyKey: key })).headers.get('idempotent-replayed')).toBe('true');
    expect((await signed('POST /v1/grant-requests', 'security', '/v1/grant-requests', { json: { ...json, level: 2 } })).body.code).toBe('level_above_ceiling');
    expect((await token('POST /v1/grant-requests', 'operator', '/v1/grant-requests', { json })).status).toBe(403);
  });

  it('GET /v1/grant-requests: 200, 422', async () => {
    expect((await token('GET /v1/grant-requests', 'auditor', '/v1/grant-requests?status=pending')).body.data.length).toBeGreaterThan(0);
    expect((await token('GET /v1/grant-requests', 'auditor', '/v1/grant-requests?status=nope')).status).toBe(422);
  });

  it('GET /v1/grant-requests/{id}: 200 for its group and a token, 404 for another group', async () => {
    expect((await signed('GET /v1/grant-requests/:id', 'developer', `/v1/grant-requests/${asked.id}`)).body.timeline.length).toBeGreaterThan(0);
    expect((await token('GET /v1/grant-requests/:id', 'auditor', `/v1/grant-requests/${asked.id}`)).body.id).toBe(asked.id);
    expect((await signed('GET /v1/grant-requests/:id', 'security', `/v1/grant-requests/${asked.id}`)).status).toBe(404);
  });

  it('POST /v1/grant-requests/{id}/approve: 200 with the grant, 403 separation_of_powers, 404', async () => {
    const own = (await signed('POST /v1/grant-requests', 'main', '/v1/grant-requests', { json: { provider: 'test', level: 3, allowed_actions: ['test.read'], resources: ['acme/*'], ttl_s: 600, justification: 'contracts' } })).body;
    expect((await signed('POST /v1/grant-requests/:id/approve', 'main', `/v1/grant-requests/${own.id}/approve`, { json: {} })).body.code).toBe('separation_of_powers');
    const approved = await token('POST /v1/grant-requests/:id/approve', 'operator', `/v1/grant-requests/${own.id}/approve`, { json: { reason: 'contracts' } });
    expect(approved.body).toMatchObject({ request: { status: 'approved' }, grant: { status: 'pending_approval' } });
    expect((await token('POST /v1/grant-requests/:id/approve', 'operator', '/v1/grant-requests/grq_nope/approve', { json: {} })).status).toBe(404);
  });

  it('POST /v1/grant-requests/{id}/deny: 200, 409 grant_request_not_pending, 422', async () => {
    expect((await signed('POST /v1/grant-requests/:id/deny', 'main', `/v1/grant-requests/${asked.id}/deny`, { json: {} })).status).toBe(422);
    expect((await signed('POST /v1/grant-requests/:id/deny', 'main', `/v1/grant-requests/${asked.id}/deny`, { json: { reason: 'contracts' } })).body.status).toBe('denied');
    expect((await token('POST /v1/grant-requests/:id/approve', 'operator', `/v1/grant-requests/${asked.id}/approve`, { json: {} })).body.code).toBe('grant_request_not_pending');
  });
});

describe('kernel', () => {
  let task: { id: string; etag: string };

  it('POST /v1/tasks: 201 with ETag and Location, a replay, 403 for another group, 422', async () => {
    const key = randomUUID();
    const json = { title: 'Contract task', type: 'BUG', definition_of_done: ['tests'] };
    const res = await signed('POST /v1/tasks', 'main', '/v1/tasks', { json, idempotencyKey: key });
    task = { id: res.body.id, etag: res.headers.get('etag')! };
    expect((await signed('POST /v1/tasks', 'main', '/v1/tasks', { json, idempotencyKey: key })).headers.get('idempotent-replayed')).toBe('true');
    expect((await signed('POST /v1/tasks', 'developer', '/v1/tasks', { json })).status).toBe(403);
    expect((await signed('POST /v1/tasks', 'main', '/v1/tasks', { json: { title: '' } })).status).toBe(422);
  });

  it('GET /v1/tasks: 200, 422', async () => {
    expect((await signed('GET /v1/tasks', 'developer', '/v1/tasks', { query: { limit: 1 } })).body.data).toHaveLength(1);
    expect((await signed('GET /v1/tasks', 'developer', '/v1/tasks', { query: { state: 'NOPE' } })).status).toBe(422);
  });

  it('GET /v1/tasks/{id} and /context: 200, 404', async () => {
    expect((await signed('GET /v1/tasks/:id', 'developer', `/v1/tasks/${task.id}`)).body.id).toBe(task.id);
    expect((await signed('GET /v1/tasks/:id', 'developer', '/v1/tasks/not-a-ulid')).status).toBe(404);
    expect((await signed('GET /v1/tasks/:id/context', 'developer', `/v1/tasks/${task.id}/context`)).body.activity.length).toBeGreaterThan(0);
    expect((await signed('GET /v1/tasks/:id/context', 'developer', '/v1/tasks/01JAAAAAAAAAAAAAAAAAAAAAAA/context')).status).toBe(404);
  });

  it('PATCH /v1/tasks/{id} and /dod: 200 with a new ETag, 428 without If-Match', async () => {
    let res = await signed('PATCH /v1/tasks/:id', 'main', `/v1/tasks/${task.id}`, { json: { priority: 'P1' }, headers: { 'if-match': task.etag } });
    task.etag = res.headers.get('etag')!;
    res = await signed('PATCH /v1/tasks/:id/dod', 'main', `/v1/tasks/${task.id}/dod`, { json: { items: [{ id: 1, done: true }] }, headers: { 'if-match': task.etag } });
    task.etag = res.headers.get('etag')!;
    expect(res.body.definition_of_done[0].done).toBe(true);
    expect((await signed('PATCH /v1/tasks/:id', 'main', `/v1/tasks/${task.id}`, { json: { priority: 'P2' } })).status).toBe(428);
    expect((await signed('PATCH /v1/tasks/:id/dod', 'main', `/v1/tasks/${task.id}/dod`, { json: { docs_updated: true } })).status).toBe(428);
    expect((await signed('PATCH /v1/tasks/:id', 'main', `/v1/tasks/${task.id}`, { json: { type: 'OPS' }, headers: { 'if-match': task.etag } })).status).toBe(422);
  });

  it('POST /v1/tasks/{id}/transition: 200, 409 illegal_transition, 412', async () => {
    const res = await signed('POST /v1/tasks/:id/transition', 'main', `/v1/tasks/${task.id}/transition`, { json: { to: 'TRIAGED' }, headers: { 'if-match': task.etag } });
    task.etag = res.headers.get('etag')!;
    expect((await signed('POST /v1/tasks/:id/transition', 'main', `/v1/tasks/${task.id}/transition`, { json: { to: 'DONE' }, headers: { 'if-match': task.etag } })).body.code).toBe('illegal_transition');
    expect((await signed('POST /v1/tasks/:id/transition', 'main', `/v1/tasks/${task.id}/transition`, { json: { to: 'READY' }, headers: { 'if-match': '"v999"' } })).status).toBe(412);
  });

  it('POST /v1/tasks/{id}/gate and /override: 200, 409 conflict on a task without a gate', async () => {
    const gated = await kernel.taskIn('APPROVAL', { type: 'SECURITY' });
    const res = await signed('POST /v1/tasks/:id/gate', 'security', `/v1/tasks/${gated.id}/gate`, { json: { decision: 'approve' }, headers: { 'if-match': gated.etag } });
    expect(res.body.gate_status).toBe('approved');
    const other = await kernel.taskIn('APPROVAL', { type: 'REVOPS' });
    const over = await signed('POST /v1/tasks/:id/override', 'main', `/v1/tasks/${other.id}/override`, { json: { reason: 'launch', risk_acceptance: 'CFO signed' }, headers: { 'if-match': other.etag } });
    expect(over.body.follow_up).toMatchObject({ priority: 'P0' });
    expect((await signed('POST /v1/tasks/:id/gate', 'main', `/v1/tasks/${task.id}/gate`, { json: { decision: 'approve' }, headers: { 'if-match': task.etag } })).body.code).toBe('conflict');
    expect((await signed('POST /v1/tasks/:id/override', 'main', `/v1/tasks/${task.id}/override`, { json: { reason: 'x', risk_acceptance: 'y' }, headers: { 'if-match': task.etag } })).body.code).toBe('conflict');
  });

  it('GET /v1/dispatches and POST /v1/dispatches/{id}/ack: 200, 422, 404', async () => {
    await taskIn(broker, 'READY');
    await runDispatchOnce(broker.deps);
    const list = await signed('GET /v1/dispatches', 'developer', '/v1/dispatches', { query: { status: 'pending' } });
    expect(list.body.data.length).toBeGreaterThan(0);
    const acked = await signed('POST /v1/dispatches/:id/ack', 'developer', `/v1/dispatches/${list.body.data[0].id}/ack`, { json: {} });
    expect(acked.body.status).toBe('acked');
    expect((await signed('GET /v1/dispatches', 'developer', '/v1/dispatches', { query: { status: 'nope' } })).status).toBe(422);
    expect((await signed('POST /v1/dispatches/:id/ack', 'main', `/v1/dispatches/${list.body.data[0].id}/ack`, { json: {} })).status).toBe(404);
    expect((await signed('POST /v1/dispatches/:id/ack', 'developer', `/v1/dispatches/${list.body.data[0].id}/ack`, { json: { extra: 1 } })).status).toBe(422);
  });
});

describe('calls', () => {
  const key = `contracts-${randomUUID()}`;

  it('POST /v1/ext/calls: 200 with the receipt, a replay, 403 without a grant, 502 provider_error, 422', async () => {
    await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'developer', provider: 'test', level: 1, allowed_actions: ['test.read'], reason: 'calls' } });
    const ok = await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'test.read', params: {} }, idempotencyKey: key });
    expect(ok.body).toMatchObject({ status: 'succeeded', receipt: { decision: 'allowed' } });
    expect((await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'test.read', params: {} }, idempotencyKey: key })).headers.get('idempotent-replayed')).toBe('true');
    expect((await signed('POST /v1/ext/calls', 'security', '/v1/ext/calls', { json: { action: 'test.read', params: {} } })).body.code).toBe('no_capability');
    expect((await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'test.read', params: { reject: true } } })).body.code).toBe('provider_error');
    expect((await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'nope.nothing' } })).body.code).toBe('unknown_action');
    expect((await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { rawBody: '{' })).body.code).toBe('malformed_json');
  });

  it('GET /v1/ext/calls and /v1/calls: 200 pages, 422 for a cursor they did not give', async () => {
    expect((await signed('GET /v1/ext/calls', 'developer', '/v1/ext/calls', { query: { limit: 1 } })).body).toMatchObject({ has_more: true, next_cursor: expect.any(String) });
    expect((await signed('GET /v1/ext/calls', 'developer', '/v1/ext/calls', { query: { cursor: 'garbage' } })).status).toBe(422);
    expect((await token('GET /v1/calls', 'auditor', '/v1/calls?group=developer')).body.data.length).toBeGreaterThan(1);
    expect((await token('GET /v1/calls', 'auditor', '/v1/calls?status=nope')).status).toBe(422);
  });

  it('GET /v1/ext/calls/{request_id} and /v1/calls/{group}/{request_id}: 200 with receipt and answer, 404', async () => {
    expect((await signed('GET /v1/ext/calls/:request_id', 'developer', `/v1/ext/calls/${key}`)).body).toMatchObject({ status: 'succeeded', http_status: 200 });
    expect((await signed('GET /v1/ext/calls/:request_id', 'main', `/v1/ext/calls/${key}`)).status).toBe(404);
    expect((await token('GET /v1/calls/:group/:request_id', 'operator', `/v1/calls/developer/${key}`)).body.request_id).toBe(key);
    expect((await token('GET /v1/calls/:group/:request_id', 'operator', `/v1/calls/main/${key}`)).status).toBe(404);
  });

  it('GET /v1/ext/capabilities: 200, 403 for a token', async () => {
    const res = await signed('GET /v1/ext/capabilities', 'developer', '/v1/ext/capabilities');
    expect(res.body.actions.find((a: { action: string }) => a.action === 'test.read')).toMatchObject({ allowed: true });
    expect((await token('GET /v1/ext/capabilities', 'auditor', '/v1/ext/capabilities')).status).toBe(403);
  });
});

describe('runner', () => {
  it('GET /v1/runs, GET /v1/runs/{id}, POST /v1/runs/{id}/cancel: 200, 404, 409, 422', async () => {
    const now = broker.clock.now();
    const id = '01JRUNCONTRACTS00000000000';
    await broker.deps.stores.runs.claim(
      { id, dispatchKey: `contracts:${id}`, dispatchId: id, taskId: id, group: 'developer', status: 'claimed', createdAt: now },
      { actor: 'system', kind: 'run.claimed', subject: id, detail: { run_id: id } },
    );
    expect((await token('GET /v1/runs', 'auditor', '/v1/runs?group=developer')).body.data.map((r: { id: string }) => r.id)).toContain(id);
    expect((await token('GET /v1/runs', 'auditor', '/v1/runs?status=nope')).status).toBe(422);
    expect((await token('GET /v1/runs/:id', 'auditor', `/v1/runs/${id}`)).body).toMatchObject({ id, status: 'claimed' });
    expect((await token('GET /v1/runs/:id', 'auditor', '/v1/runs/01JNOSUCHRUN00000000000000')).status).toBe(404);
    expect((await token('POST /v1/runs/:id/cancel', 'operator', `/v1/runs/${id}/cancel`, { json: { bogus: 1 } })).status).toBe(422);
    expect((await token('POST /v1/runs/:id/cancel', 'operator', `/v1/runs/${id}/cancel`, { json: { reason: 'contract check' } })).body).toMatchObject({ id, status: 'cancelled' });
    expect((await token('POST /v1/runs/:id/cancel', 'operator', `/v1/runs/${id}/cancel`, { json: {} })).status).toBe(409);
    expect((await token('POST /v1/runs/:id/cancel', 'operator', '/v1/runs/01JNOSUCHRUN00000000000000/cancel', { json: {} })).status).toBe(404);
  });
});

describe('switches', () => {
  it('GET /v1/switches, POST /v1/switches, POST /v1/switches/{id}/clear: 201, 200, 404, 409, 422; a switched-off call is 503', async () => {
    const set = await token('POST /v1/switches', 'operator', '/v1/switches', { json: { scope: 'action', target: 'test.read', reason: 'contract check' } });
    expect(set.status).toBe(201);
    expect((await token('POST /v1/switches', 'operator', '/v1/switches', { json: { scope: 'all', target: 'x', reason: 'contract check' } })).status).toBe(422);
    const off = await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'test.read', params: {} } });
    expect(off.body).toMatchObject({ status: 503, code: 'disabled_by_operator', switch: { id: set.body.id } });
    expect((await signed('POST /v1/ext/calls', 'developer', '/v1/ext/calls', { json: { action: 'test.read', params: { resource: 'AKIA' + 'IOSFODNN7EXAMPLE' } } })).body.code).toBe('secret_in_input');
    expect((await token('GET /v1/switches', 'auditor', '/v1/switches?active=true')).body.data.map((s: { id: string }) => s.id)).toContain(set.body.id);
    expect((await token('GET /v1/switches', 'auditor', '/v1/switches?active=maybe')).status).toBe(422);
    expect((await token('POST /v1/switches/:id/clear', 'operator', `/v1/switches/${set.body.id}/clear`, { json: { reason: 'done' } })).body).toMatchObject({ id: set.body.id, active: false });
    expect((await token('POST /v1/switches/:id/clear', 'operator', `/v1/switches/${set.body.id}/clear`, { json: { reason: 'again' } })).status).toBe(409);
    expect((await token('POST /v1/switches/:id/clear', 'operator', '/v1/switches/ksw_01JNOSUCHSWITCH0000000000/clear', { json: { reason: 'x' } })).status).toBe(404);
  });
});

describe('limits', () => {
  it('GET /v1/limits: 200 with the rules, usage and circuits; 401 without a token', async () => {
    const res = await token('GET /v1/limits', 'auditor', '/v1/limits');
    expect(res.status).toBe(200);
    expect(res.body.rules.map((r: { id: string }) => r.id)).toEqual(['default-l2', 'default-l3']);
    expect((await open('GET /v1/limits', '/v1/limits')).status).toBe(401);
  });
});

describe('webhooks', () => {
  it('GET /v1/webhooks/deliveries, POST /v1/webhooks/deliveries/{id}/retry: 200, 404, 409, 422', async () => {
    // Deliveries made by the real fan-out over the trail so far (a grant created: grant.activated).
    await token('POST /v1/grants', 'operator', '/v1/grants', { json: { group: 'developer', provider: 'test', level: 1, reason: 'webhook contract' } });
    const policy = { endpoints: [{ id: 'contract', url: 'http://127.0.0.1:9/', events: [...EVENT_TYPES], secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }], refusedBurst: { threshold: 1000, windowS: 60 }, expiringWithinS: 3600, delivery: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 1000, pollMs: 50 } };
    const { webhooks, outbox } = broker.deps.stores;
    await runOutboxBatch({ store: outbox, consumer: 'webhooks', batchSize: 10_000, handle: fanOut({ store: webhooks, policy, clock: broker.deps.clock }) });
    const list = await token('GET /v1/webhooks/deliveries', 'auditor', '/v1/webhooks/deliveries?status=pending&endpoint=contract&limit=1');
    expect(list.status).toBe(200);
    expect(list.body.data[0]).toMatchObject({ endpoint: 'contract', status: 'pending', attempts: 0 });
    expect((await token('GET /v1/webhooks/deliveries', 'auditor', '/v1/webhooks/deliveries?status=maybe')).status).toBe(422);
    const id = list.body.data[0].id as string;
    expect((await token('POST /v1/webhooks/deliveries/:id/retry', 'operator', `/v1/webhooks/deliveries/${id}/retry`, { json: { reason: 'contract check' } })).body).toMatchObject({ id, status: 'pending', attempts: 0 });
    expect((await token('POST /v1/webhooks/deliveries/:id/retry', 'operator', '/v1/webhooks/deliveries/whd_01JNOSUCHDELIVERY000000000/retry', { json: {} })).status).toBe(404);
    expect((await token('POST /v1/webhooks/deliveries/:id/retry', 'operator', `/v1/webhooks/deliveries/${id}/retry`, { json: { bogus: 1 } })).status).toBe(422);
    const row = (await webhooks.get(id))!;
    await webhooks.recordAttempt(id, row.attempts, { status: 'delivered', attempts: 1, nextAttemptAt: row.nextAttemptAt, lastAttemptAt: row.nextAttemptAt, lastStatus: 204, lastError: null, deliveredAt: row.nextAttemptAt });
    expect((await token('POST /v1/webhooks/deliveries/:id/retry', 'operator', `/v1/webhooks/deliveries/${id}/retry`, { json: {} })).status).toBe(409);
  });
});

describe('renewal and per-call approval', () => {
  it('POST /v1/grants/{id}/renew: 200 renewed, 404, 409 grant_not_renewable', async () => {
    const g = (await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'security', provider: 'test', level: 1, ttl_s: 600, reason: 'to renew' } })).body;
    expect((await token('POST /v1/grants/:id/renew', 'operator', `/v1/grants/${g.id}/renew`, { json: { ttl_s: 1200, reason: 'longer' } })).body.outcome).toBe('renewed');
    expect((await signed('POST /v1/grants/:id/renew', 'main', '/v1/grants/grt_nope/renew', { json: { ttl_s: 1200, reason: 'x' } })).status).toBe(404);
    await signed('POST /v1/grants/:id/revoke', 'main', `/v1/grants/${g.id}/revoke`, { json: {} });
    expect((await token('POST /v1/grants/:id/renew', 'operator', `/v1/grants/${g.id}/renew`, { json: { ttl_s: 1200, reason: 'late' } })).body.code).toBe('grant_not_renewable');
  });

  it('POST /v1/ext/calls 202 approval_required; GET the held call; POST /v1/calls/{group}/{request_id}/approvals: 200 recorded, executed; 409, 404', async () => {
    const l3 = (await signed('POST /v1/grants', 'main', '/v1/grants', { json: { group: 'main', provider: 'test', level: 3, allowed_actions: ['test.deploy'], ttl_s: 3600, reason: 'held calls' } })).body;
    await approveTwice(broker, l3);
    const task = await taskIn(broker, 'DOING', 'main');
    const key = `held-${randomUUID()}`;
    const held = await signed('POST /v1/ext/calls', 'main', '/v1/ext/calls', { json: { action: 'test.deploy', params: {}, task_id: task }, idempotencyKey: key });
    expect(held.status).toBe(202);
    expect((await signed('POST /v1/ext/calls', 'main', '/v1/ext/calls', { json: { action: 'test.deploy', params: {}, task_id: task }, idempotencyKey: key })).status).toBe(202);
    expect((await signed('GET /v1/ext/calls/:request_id', 'main', `/v1/ext/calls/${key}`)).body).toMatchObject({ status: 'awaiting_approval', approval: { request_digest: held.body.request_digest } });
    const path = `/v1/calls/main/${key}/approvals`;
    const approve = async (id: string, group: string) => {
      const k = await generateApproverKey(id);
      await addApprover(broker.deps, { id, group, publicJwk: k.publicJwk }, 'operator:test');
      return signCallApproval(k.privateJwk, { group: 'main', request_id: key, request_digest: held.body.request_digest }, broker.clock.now(), 600);
    };
    expect((await token('POST /v1/calls/:group/:request_id/approvals', 'operator', path, { json: { jws: await approve('held-sec', 'security') } })).body.outcome).toBe('recorded');
    const ran = await signed('POST /v1/calls/:group/:request_id/approvals', 'main', path, { rawBody: await approve('held-dev', 'developer'), headers: { 'content-type': 'application/jose' } });
    expect(ran.body).toMatchObject({ outcome: 'executed', answer: { status: 200 }, call: { status: 'succeeded' } });
    expect((await token('POST /v1/calls/:group/:request_id/approvals', 'operator', path, { json: { jws: await approve('held-sre', 'sre') } })).body.code).toBe('call_not_awaiting_approval');
    expect((await token('POST /v1/calls/:group/:request_id/approvals', 'operator', '/v1/calls/main/nope/approvals', { json: { jws: await approve('held-x', 'sre') } })).status).toBe(422);
    expect((await token('GET /v1/calls/:group/:request_id', 'operator', `/v1/calls/main/${key}`)).body.approval.approvals).toHaveLength(2);
  });
});

describe('coverage', () => {
  it('checked a success and an error of every route the document lists', () => {
    const missing: string[] = [];
    for (const key of checker.contracts.keys()) {
      const statuses = [...(checker.seen.get(key) ?? [])];
      if (!statuses.some((s) => s < 300)) missing.push(`${key}: no success checked`);
      if (!statuses.some((s) => s >= 400)) missing.push(`${key}: no error checked`);
    }
    expect(missing).toEqual([]);
  });
});
