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
