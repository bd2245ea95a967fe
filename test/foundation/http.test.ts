/**
 * HTTP basics through a real server: problem+json for unknown routes and methods, the body
 * limit, /ready on an unwritable database and on missing migrations, /metrics.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../../src/platform/db/open.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

let broker: TestBroker;
beforeAll(async () => {
  broker = await startBroker({ env: { BROKER_BODY_LIMIT_BYTES: '2048' } });
});
afterAll(() => broker.stop());

async function problem(res: Response) {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status: res.status, type: expect.stringMatching(/^urn:nanoclaw-broker:problem:/) });
  expect(typeof body.detail).toBe('string');
  return body;
}

describe('problem+json for every error', () => {
  it('an unknown route: 404 not_found', async () => {
    const res = await fetch(`${broker.url}/nope`);
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe('not_found');
  });

  it('a known route with the wrong method: 405 with Allow', async () => {
    const res = await fetch(`${broker.url}/health`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
    expect((await problem(res)).code).toBe('method_not_allowed');
  });

  it('a signed request for an unknown /v1 route: 404', async () => {
    const res = await broker.client('developer').get('/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });

  it('a body over the limit: 413, before anything else is read', async () => {
    const res = await fetch(`${broker.url}/v1/whoami`, { method: 'POST', body: 'x'.repeat(4096), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect((await problem(res)).code).toBe('payload_too_large');
  });

  it('a signed body over the limit: 413', async () => {
    const res = await broker.client('developer').post('/v1/whoami', { pad: 'y'.repeat(4096) });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('payload_too_large');
  });

  it('echoes a valid X-Request-Id and puts it on the log line', async () => {
    const res = await fetch(`${broker.url}/health`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    expect(broker.logs.some((l) => l.includes('"req_id":"trace-abc.123"'))).toBe(true);
  });
});

describe('/ready', () => {
  it('is 200 on a writable, migrated database', async () => {
    const res = await fetch(`${broker.url}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready' });
  });

  it('is 503 when the database is not writable', async () => {
    const dataDir = broker.dataDir;
    const ro = await startBroker({ dataDir, listen: true, readonlyDb: true });
    try {
      const res = await fetch(`${ro.url}/ready`);
      expect(res.status).toBe(503);
      const body = await problem(res);
      expect(body.code).toBe('not_ready');
      expect(String(body.detail)).toMatch(/not writable/);
    } finally {
      await ro.stop();
    }
  });

  it('is 503 when a committed migration is not applied', async () => {
    const other = await startBroker();
    try {
      other.deps.db.sqlite.prepare('DELETE FROM __drizzle_migrations WHERE created_at = (SELECT MAX(created_at) FROM __drizzle_migrations)').run();
      const res = await fetch(`${other.url}/ready`);
      expect(res.status).toBe(503);
      expect(String((await problem(res)).detail)).toMatch(/1 migration\(s\) not applied/);
    } finally {
      await other.stop();
    }
  });
});

describe('/metrics', () => {
  it('serves Prometheus text with request counts and latency by route and status', async () => {
    await broker.client('developer').get('/v1/whoami');
    const text = await (await fetch(`${broker.url}/metrics`)).text();
    expect(text).toMatch(/broker_http_requests_total\{method="GET",route="\/v1\/whoami",status="200"\} \d+/);
    expect(text).toMatch(/broker_http_request_duration_seconds_bucket\{le="[0-9.]+",method="GET",route="\/v1\/whoami",status="200"\}/);
    expect(text).toMatch(/broker_http_requests_total\{method="GET",route="unmatched",status="404"\}/);
  });
});

describe('migrations', () => {
  it('apply to an empty file', () => {
    const file = path.join(broker.dataDir, 'empty.db');
    const db = openDb({ path: file });
    const tables = db.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['gov_activities', 'group_keys', 'broker_meta']));
    expect(db.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.sqlite.pragma('synchronous', { simple: true })).toBe(2);
    db.sqlite.close();
  });
});
