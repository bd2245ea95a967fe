/**
 * The Cloud Logs actions end to end: a running broker (real SQLite, real HTTP, RFC 9421-signed
 * requests), grants created through `POST /v1/grants`, calls through `POST /v1/ext/calls`, and the
 * real `@google-cloud/logging` client talking gRPC to the local fake of the Logging API. The host
 * environment (`CLOUDLOGS_*`, `GOOGLE_APPLICATION_CREDENTIALS`) is what configures the provider.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BrokerResponse } from '../../../src/client/index.js';
import { startBroker, type TestBroker } from '../../helpers/harness.js';
import { AUDIT_LOG_TYPE_URL, encodeAuditLog, type FakeAuditLog } from '../../fixtures/cloudlogs/fake-logging.js';
import { startCloudLogsWorld, type CloudLogsWorld } from '../../fixtures/cloudlogs/setup.js';

let world: CloudLogsWorld;
let broker: TestBroker;

const DAY = '2026-01-01T00:00:00.000Z';
const NEXT_DAY = '2026-01-02T00:00:00.000Z';
const at = (s: number) => new Date(Date.parse(DAY) + s * 1000).toISOString();
const GH_TOKEN = `ghp_${'Zx9Q'.repeat(9)}`;

/** `POST /v1/ext/calls` signed as `group`. */
function call(group: string, action: string, params: Record<string, unknown>, key = randomUUID()): Promise<BrokerResponse<any>> {
  return broker.client(group).post('/v1/ext/calls', { action, params }, { idempotencyKey: key });
}

/** Everything the broker stored or wrote: its log lines, audit rows and stored call answers. */
function everythingStored(): string {
  const db = broker.deps.db.sqlite;
  const rows = (sql: string) => JSON.stringify(db.prepare(sql).all());
  return [broker.logs.join(''), rows('SELECT * FROM gov_activities'), rows('SELECT * FROM ext_calls')].join('\n');
}

beforeAll(async () => {
  world = await startCloudLogsWorld();
  Object.assign(process.env, world.env);
  broker = await startBroker();
  const res = await broker.client('main').post('/v1/grants', {
    group: 'developer',
    provider: 'cloudlogs',
    level: 1,
    resources: ['proj-alpha', 'proj-gamma'],
    reason: 'read production logs while fixing the incident',
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
});
afterAll(async () => {
  await broker?.stop();
  await world?.close();
});
beforeEach(() => {
  world.fake.requests.length = 0;
  world.fake.entries.clear();
  world.fake.logs.clear();
});

describe('through a running broker', () => {
  it('reports the provider ready', async () => {
    const body = (await (await fetch(`${broker.url}/ready`)).json()) as { providers: Record<string, unknown> };
    expect(body.providers['cloudlogs']).toEqual({ available: true });
  });

  it('cloudlogs.list_logs lists the log names of a granted project', async () => {
    world.fake.logs.set('proj-alpha', ['stdout', 'requests']);
    const res = await call('developer', 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      status: 'succeeded',
      action: 'cloudlogs.list_logs',
      result: { project: 'proj-alpha', logs: ['projects/proj-alpha/logs/stdout', 'projects/proj-alpha/logs/requests'], next_page_token: null },
    });
    expect(world.fake.requests.map((r) => r.method)).toEqual(['ListLogs']);
  });

  it('cloudlogs.query_entries sends the composed filter and returns entries redacted; no credential is stored anywhere', async () => {
    world.fake.entries.set('proj-alpha', [
      { timestamp: at(1), severity: 'ERROR', insertId: 'q1', textPayload: `git push with ${GH_TOKEN} failed` },
      { timestamp: at(2), severity: 'ERROR', insertId: 'q2', jsonPayload: { msg: 'retry', password: 'hunter2hunter2' } },
    ]);
    const filter = 'severity>=ERROR AND textPayload:"(push)"';
    const res = await call('developer', 'cloudlogs.query_entries', { project: 'proj-alpha', filter, start: DAY, end: NEXT_DAY, order: 'asc' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const expected = `(${filter}) AND timestamp >= "${DAY}" AND timestamp < "${NEXT_DAY}"`;
    expect(world.fake.requests.map((r) => r.request['filter'])).toEqual([expected]);
    expect(res.body.result.filter).toBe(expected);
    expect(res.body.result.entries.map((e: any) => e.textPayload ?? e.jsonPayload)).toEqual([
      'git push with [REDACTED] failed',
      { msg: 'retry', password: '[REDACTED]' },
    ]);

    const bearer = world.fake.requests[0]!.metadata['authorization']!.slice('Bearer '.length);
    expect(bearer.length).toBeGreaterThan(100);
    const stored = everythingStored();
    for (const secret of [GH_TOKEN, 'hunter2hunter2', bearer, world.account.privateKeyId, world.account.privateKeyPem.split('\n')[1]!]) {
      expect(JSON.stringify(res.body)).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });

  it('refuses a filter that tries to escape the time bounds with 422, before any request', async () => {
    const res = await call('developer', 'cloudlogs.query_entries', {
      project: 'proj-alpha',
      filter: 'true) OR (timestamp < "1970-01-01T00:00:00Z"',
      start: DAY,
      end: NEXT_DAY,
    });
    expect([res.status, res.body.code]).toEqual([422, 'validation_failed']);
    expect(res.body.issues[0]).toMatchObject({ path: ['params', 'filter'] });
    expect(world.fake.requests).toHaveLength(0);
  });

  it('cloudlogs.tail_entries returns what arrived within its window', async () => {
    world.fake.tail = { batches: [[{ timestamp: at(1), insertId: 'live1', textPayload: 'live' }]] };
    const res = await call('developer', 'cloudlogs.tail_entries', { project: 'proj-alpha', filter: 'severity>=INFO', window_ms: 200 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result).toMatchObject({ stop_reason: 'window', entries: [{ insertId: 'live1', textPayload: 'live' }] });
  });

  it('cloudlogs.tail_entries may collect for longer than BROKER_PROVIDER_TIMEOUT_MS: its window sets the timeout', async () => {
    const short = await startBroker({ env: { BROKER_PROVIDER_TIMEOUT_MS: '300' } });
    try {
      const g = await short.client('main').post('/v1/grants', { group: 'developer', provider: 'cloudlogs', level: 1, reason: 'tail test' });
      expect(g.status, JSON.stringify(g.body)).toBe(201);
      world.fake.tail = { batches: [[{ timestamp: at(1), insertId: 'slow1', textPayload: 'slow' }]] };
      const res = await short.client('developer').post('/v1/ext/calls', { action: 'cloudlogs.tail_entries', params: { project: 'proj-alpha', window_ms: 1200 } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.result).toMatchObject({ stop_reason: 'window', entries: [{ insertId: 'slow1' }] });
      expect(res.body.duration_ms).toBeGreaterThanOrEqual(1200);
    } finally {
      await short.stop();
    }
  });

  it('cloudlogs.tail_entries stops at its entry bound', async () => {
    const batch = Array.from({ length: 300 }, (_, i) => ({ timestamp: at(i), insertId: `b${i}`, textPayload: `line ${i}` }));
    world.fake.tail = { batches: [batch, batch] };
    const res = await call('developer', 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 30_000, limit: 500 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result.stop_reason).toBe('limit');
    expect(res.body.result.entries).toHaveLength(500);
  });

  it.each([
    ['a project outside the grant', 'proj-beta'],
    ['a granted project outside CLOUDLOGS_PROJECT_IDS', 'proj-gamma'],
  ])('answers 403 for %s, with no request sent', async (_what, project) => {
    for (const [action, extra] of [
      ['cloudlogs.list_logs', {}],
      ['cloudlogs.query_entries', { start: DAY, end: NEXT_DAY }],
      ['cloudlogs.tail_entries', { window_ms: 100 }],
    ] as const) {
      const res = await call('developer', action, { project, ...extra });
      expect([res.status, res.body.code], `${action}: ${JSON.stringify(res.body)}`).toEqual([403, 'resource_out_of_scope']);
    }
    expect(world.fake.requests).toHaveLength(0);
  });

  it('answers 403 to a group without a Cloud Logs grant, with no request sent', async () => {
    const res = await call('security', 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(res.status).toBe(403);
    expect(world.fake.requests).toHaveLength(0);
  });

  it('retries a transient UNAVAILABLE and reports PERMISSION_DENIED as provider_error 403', async () => {
    world.fake.logs.set('proj-alpha', ['stdout']);
    world.fake.failNext = { code: grpc.status.UNAVAILABLE, details: 'try again' };
    const retried = await call('developer', 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(world.fake.requests).toHaveLength(2);

    world.fake.failNext = { code: grpc.status.PERMISSION_DENIED, details: 'logging.logEntries.list denied' };
    const denied = await call('developer', 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(denied.status).toBe(502);
    expect(denied.body).toMatchObject({ code: 'provider_error', provider_status: 403, provider_code: 'PERMISSION_DENIED' });
    expect(world.fake.requests).toHaveLength(3);
  });
});

describe('protoPayload (Cloud Audit Logs) through a running broker', () => {
  const BEARER = 'Bearer abcdefghijklmnopqrstuvwxyz0123456789';
  const setIamPolicy: FakeAuditLog = {
    serviceName: 'cloudresourcemanager.googleapis.com',
    methodName: 'SetIamPolicy',
    resourceName: 'projects/proj-alpha',
    authenticationInfo: { principalEmail: 'alice@example.com' },
    authorizationInfo: [{ resource: 'projects/proj-alpha', permission: 'resourcemanager.projects.setIamPolicy', granted: true }],
    requestMetadata: {
      callerIp: '203.0.113.7',
      callerSuppliedUserAgent: 'gcloud/500.0.0',
      requestAttributes: { headers: { authorization: BEARER }, time: { seconds: String(Date.parse(at(1)) / 1000) } },
    },
    status: {},
    request: {
      '@type': 'type.googleapis.com/google.iam.v1.SetIamPolicyRequest',
      resource: 'proj-alpha',
      policy: { bindings: [{ role: 'roles/owner', members: ['user:bob@example.com'] }], version: 3 },
      password: 'hunter2hunter2',
      note: `pushed with ${GH_TOKEN}`,
    },
    response: { '@type': 'type.googleapis.com/google.iam.v1.Policy', etag: 'BwYz', version: 3 },
  };

  it('cloudlogs.query_entries returns a Cloud Audit Log decoded and redacted, next to unchanged text and JSON entries', async () => {
    world.fake.entries.set('proj-alpha', [
      { timestamp: at(1), severity: 'NOTICE', insertId: 'audit1', log: 'cloudaudit.googleapis.com/activity', protoPayload: { auditLog: setIamPolicy } },
      { timestamp: at(2), insertId: 'text1', textPayload: 'plain' },
      { timestamp: at(3), insertId: 'json1', jsonPayload: { msg: 'ok', n: 1 } },
    ]);
    const res = await call('developer', 'cloudlogs.query_entries', { project: 'proj-alpha', start: DAY, end: NEXT_DAY, order: 'asc' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [audit, text, json] = res.body.result.entries;
    expect(audit).toEqual({
      timestamp: at(1),
      severity: 'NOTICE',
      logName: 'projects/proj-alpha/logs/cloudaudit.googleapis.com%2Factivity',
      resource: { type: 'global', labels: { project_id: 'proj-alpha' } },
      labels: {},
      insertId: 'audit1',
      protoPayload: {
        '@type': AUDIT_LOG_TYPE_URL,
        serviceName: 'cloudresourcemanager.googleapis.com',
        methodName: 'SetIamPolicy',
        resourceName: 'projects/proj-alpha',
        status: {},
        authenticationInfo: { principalEmail: 'alice@example.com' },
        authorizationInfo: [{ resource: 'projects/proj-alpha', permission: 'resourcemanager.projects.setIamPolicy', granted: true }],
        requestMetadata: {
          callerIp: '203.0.113.7',
          callerSuppliedUserAgent: 'gcloud/500.0.0',
          requestAttributes: { headers: { authorization: '[REDACTED]' }, time: '2026-01-01T00:00:01Z' },
        },
        request: {
          '@type': 'type.googleapis.com/google.iam.v1.SetIamPolicyRequest',
          resource: 'proj-alpha',
          policy: { bindings: [{ role: 'roles/owner', members: ['user:bob@example.com'] }], version: 3 },
          password: '[REDACTED]',
          note: 'pushed with [REDACTED]',
        },
        response: { '@type': 'type.googleapis.com/google.iam.v1.Policy', etag: 'BwYz', version: 3 },
      },
    });
    expect(text).toEqual(expect.objectContaining({ insertId: 'text1', textPayload: 'plain' }));
    expect(json).toEqual(expect.objectContaining({ insertId: 'json1', jsonPayload: { msg: 'ok', n: 1 } }));
    for (const e of [text, json]) for (const key of ['protoPayload', 'payloadOmitted']) expect(e).not.toHaveProperty(key);

    const stored = everythingStored();
    for (const secret of ['hunter2hunter2', GH_TOKEN, BEARER.slice('Bearer '.length)]) {
      expect(JSON.stringify(res.body)).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });

  it('caps an oversized audit log at 8 KiB like a JSON payload, redacting before the cut', async () => {
    const big: FakeAuditLog = {
      serviceName: 'storage.googleapis.com',
      methodName: 'storage.objects.create',
      request: { password: 'hunter2hunter2', blob: 'x'.repeat(20_000) },
    };
    world.fake.entries.set('proj-alpha', [{ timestamp: at(1), insertId: 'big1', protoPayload: { auditLog: big } }]);
    const res = await call('developer', 'cloudlogs.query_entries', { project: 'proj-alpha', start: DAY, end: NEXT_DAY });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [entry] = res.body.result.entries;
    expect(entry.payloadTruncated).toBe(true);
    expect(entry.payloadOmitted).toBeUndefined();
    const head = `{"@type":"${AUDIT_LOG_TYPE_URL}","serviceName":"storage.googleapis.com","methodName":"storage.objects.create","request":{"password":"[REDACTED]","blob":"`;
    expect(entry.protoPayload).toBe(head + 'x'.repeat(8192 - head.length));
    expect(JSON.stringify(res.body)).not.toContain('hunter2hunter2');
  });

  it('returns a payload of an unknown type, or one that fails to decode, as its @type with payloadOmitted, and logs the failure without content', async () => {
    const broken = encodeAuditLog({ serviceName: 'sentinel-service.googleapis.com', methodName: 'sentinel.method' });
    world.fake.entries.set('proj-alpha', [
      {
        timestamp: at(1),
        insertId: 'other1',
        protoPayload: { typeUrl: 'type.googleapis.com/google.appengine.logging.v1.RequestLog', value: Buffer.from('GET /opaque-request-path') },
      },
      // A valid AuditLog followed by a tag with wire type 7, which does not exist.
      { timestamp: at(2), insertId: 'broken1', protoPayload: { typeUrl: AUDIT_LOG_TYPE_URL, value: Buffer.concat([broken, Buffer.from([0x0f])]) } },
      { timestamp: at(3), insertId: 'fine1', protoPayload: { auditLog: { serviceName: 'compute.googleapis.com' } } },
    ]);
    const logsBefore = broker.logs.length;
    const res = await call('developer', 'cloudlogs.query_entries', { project: 'proj-alpha', start: DAY, end: NEXT_DAY, order: 'asc' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result.entries.map((e: any) => [e.insertId, e.protoPayload, e.payloadOmitted])).toEqual([
      ['other1', { '@type': 'type.googleapis.com/google.appengine.logging.v1.RequestLog' }, 'unknown type'],
      ['broken1', { '@type': AUDIT_LOG_TYPE_URL }, 'decode failed'],
      ['fine1', { '@type': AUDIT_LOG_TYPE_URL, serviceName: 'compute.googleapis.com' }, undefined],
    ]);
    expect(JSON.stringify(res.body)).not.toContain('opaque-request-path');

    const lines = broker.logs.slice(logsBefore).join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const warnings = lines.filter((l) => String(l['msg']).includes('protoPayload could not be decoded'));
    expect(warnings).toEqual([expect.objectContaining({ level: 40, typeUrl: AUDIT_LOG_TYPE_URL, insertId: 'broken1', error: expect.stringContaining('wire type') })]);
    expect(everythingStored()).not.toContain('sentinel');
    expect(everythingStored()).not.toContain('opaque-request-path');
  });

  it('cloudlogs.tail_entries decodes audit logs too', async () => {
    world.fake.tail = {
      batches: [
        [
          { timestamp: at(1), insertId: 'live-audit', protoPayload: { auditLog: setIamPolicy } },
          { timestamp: at(2), insertId: 'live-other', protoPayload: { typeUrl: 'type.googleapis.com/acme.v1.Event', value: Buffer.from([8, 1]) } },
        ],
      ],
    };
    const res = await call('developer', 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 200 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [audit, other] = res.body.result.entries;
    expect(audit.protoPayload).toMatchObject({
      '@type': AUDIT_LOG_TYPE_URL,
      serviceName: 'cloudresourcemanager.googleapis.com',
      methodName: 'SetIamPolicy',
      authenticationInfo: { principalEmail: 'alice@example.com' },
      request: { password: '[REDACTED]', policy: { bindings: [{ role: 'roles/owner', members: ['user:bob@example.com'] }] } },
    });
    expect(other).toMatchObject({ insertId: 'live-other', protoPayload: { '@type': 'type.googleapis.com/acme.v1.Event' }, payloadOmitted: 'unknown type' });
  });
});
