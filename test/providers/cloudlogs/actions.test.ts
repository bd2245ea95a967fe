/**
 * The Cloud Logs actions' `execute`, run through the real `@google-cloud/logging` client (gRPC)
 * against the local fake of the Logging API.
 */
import * as grpc from '@grpc/grpc-js';
import { jwtVerify } from 'jose';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type ActionContext, type Provider } from '../../../src/providers/contract.js';
import { ApiError } from '../../../src/platform/http/problem.js';
import { createLogger } from '../../../src/platform/log.js';
import { cloudLogsProvider } from '../../../src/providers/cloudlogs/index.js';
import type { FakeEntry } from '../../fixtures/cloudlogs/fake-logging.js';
import { startCloudLogsWorld, type CloudLogsWorld } from '../../fixtures/cloudlogs/setup.js';

let world: CloudLogsWorld;
let provider: Provider;
const logLines: string[] = [];

function context(signal: AbortSignal = new AbortController().signal): ActionContext {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { signal, group: 'developer', requestId: 'req-1', taskId: null, grantResources: null, log: createLogger('debug', sink) };
}

/** Validates `raw` with the action's schema, as the broker does, then executes it. */
async function run(p: Provider, id: string, raw: unknown, signal?: AbortSignal): Promise<any> {
  const action = p.actions.find((a) => a.id === id);
  if (!action) throw new Error(`no action ${id}`);
  return action.execute(action.params.parse(raw), context(signal));
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
}

const DAY = '2026-01-01T00:00:00.000Z';
const NEXT_DAY = '2026-01-02T00:00:00.000Z';
const at = (s: number) => new Date(Date.parse(DAY) + s * 1000).toISOString();

beforeAll(async () => {
  world = await startCloudLogsWorld();
  provider = cloudLogsProvider(world.env);
});
afterAll(async () => {
  await provider.close?.();
  await world?.close();
});
beforeEach(() => {
  world.fake.requests.length = 0;
  world.fake.entries.clear();
  world.fake.logs.clear();
  world.fake.tail = { batches: [] };
});

describe('cloudlogs.list_logs', () => {
  it('lists full log names of the project, a page at a time', async () => {
    world.fake.logs.set('proj-alpha', ['stdout', 'stderr', 'cloudaudit.googleapis.com/activity']);
    const first = await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha', limit: 2 });
    expect(first.logs).toEqual(['projects/proj-alpha/logs/stdout', 'projects/proj-alpha/logs/stderr']);
    expect(first.next_page_token).toEqual(expect.any(String));
    const second = await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha', limit: 2, page_token: first.next_page_token });
    expect(second).toEqual({
      project: 'proj-alpha',
      logs: ['projects/proj-alpha/logs/cloudaudit.googleapis.com%2Factivity'],
      next_page_token: null,
    });
    expect(world.fake.requests.map((r) => [r.method, r.request])).toEqual([
      ['ListLogs', { parent: 'projects/proj-alpha', pageSize: 2 }],
      ['ListLogs', { parent: 'projects/proj-alpha', pageSize: 2, pageToken: '2' }],
    ]);
  });

  it('sends the host credentials as a JWT signed with the ADC key, and never returns them', async () => {
    world.fake.logs.set('proj-beta', ['stdout']);
    const result = await run(provider, 'cloudlogs.list_logs', { project: 'proj-beta' });
    const auth = world.fake.requests[0]!.metadata['authorization']!;
    expect(auth).toMatch(/^Bearer eyJ/);
    const token = auth.slice('Bearer '.length);
    const { payload, protectedHeader } = await jwtVerify(token, world.account.publicKey);
    expect(payload.iss).toBe(world.account.clientEmail);
    expect(protectedHeader.kid).toBe(world.account.privateKeyId);
    expect(JSON.stringify(result)).not.toContain(token);
    expect(logLines.join('')).not.toContain(token);
  });
});

describe('cloudlogs.query_entries', () => {
  const range = { project: 'proj-alpha', start: DAY, end: NEXT_DAY };

  it('sends the caller filter in parentheses AND the enforced time bounds', async () => {
    world.fake.entries.set('proj-alpha', [{ timestamp: at(5), severity: 'ERROR', textPayload: 'boom', insertId: 'a1' }]);
    const result = await run(provider, 'cloudlogs.query_entries', { ...range, filter: 'severity>=ERROR', order: 'asc', limit: 10 });
    const expected = `(severity>=ERROR) AND timestamp >= "${DAY}" AND timestamp < "${NEXT_DAY}"`;
    expect(world.fake.requests).toHaveLength(1);
    expect(world.fake.requests[0]!.request).toEqual({
      resourceNames: ['projects/proj-alpha'],
      filter: expected,
      orderBy: 'timestamp asc',
      pageSize: 10,
    });
    expect(result.filter).toBe(expected);
    expect(result.entries.map((e: any) => e.insertId)).toEqual(['a1']);
  });

  it('normalises offsets to UTC, defaults to newest first, and sends the bounds alone for a blank filter', async () => {
    await run(provider, 'cloudlogs.query_entries', { project: 'proj-alpha', start: '2026-01-01T02:00:00+02:00', end: '2026-01-01T01:30:00Z' });
    expect(world.fake.requests[0]!.request).toMatchObject({
      filter: 'timestamp >= "2026-01-01T00:00:00.000Z" AND timestamp < "2026-01-01T01:30:00.000Z"',
      orderBy: 'timestamp desc',
      pageSize: 100,
    });
  });

  it('keeps a caller filter that names its own time bounds inside the parentheses, where it can only narrow', async () => {
    const filter = 'timestamp >= "1970-01-01T00:00:00Z" OR timestamp < "2999-01-01T00:00:00Z"';
    await run(provider, 'cloudlogs.query_entries', { ...range, filter });
    expect(world.fake.requests[0]!.request['filter']).toBe(`(${filter}) AND timestamp >= "${DAY}" AND timestamp < "${NEXT_DAY}"`);
  });

  it('accepts parentheses, quotes and backslashes inside a double-quoted string, and sends them verbatim', async () => {
    const filter = 'textPayload:"a\\") OR (\\"b -- c" AND jsonPayload.msg=~"^x\\\\(y"';
    await run(provider, 'cloudlogs.query_entries', { ...range, filter });
    expect(world.fake.requests[0]!.request['filter']).toBe(`(${filter}) AND timestamp >= "${DAY}" AND timestamp < "${NEXT_DAY}"`);
  });

  it.each([
    ['closes the parentheses early', 'severity>=ERROR) OR (true', 'closes a parenthesis the filter did not open'],
    ['drops the time bounds', 'true) OR timestamp < "1970-01-01T00:00:00Z" OR (true', 'closes a parenthesis the filter did not open'],
    ['comments out the bounds', 'severity>=ERROR --', 'starts a comment'],
    ['comments out the bounds on a new line', 'severity>=ERROR\n-- hidden', 'starts a comment'],
    ['leaves a string open', 'textPayload:"abc', 'is not closed'],
    ['escapes the closing quote', 'textPayload:"abc\\"', 'is not closed'],
    ['leaves a parenthesis open', 'NOT (severity>=ERROR', 'not closed'],
    ['escapes a parenthesis outside a string', 'x\\) OR (y', 'backslash'],
    ['hides parentheses in single quotes', "')' OR true OR '('", 'single quote'],
    ['uses a control character', 'severity>=ERROR\u0000', 'control character'],
  ])('refuses a filter that %s, before any request', async (_what, filter, message) => {
    const err = await failure(run(provider, 'cloudlogs.query_entries', { ...range, filter }));
    expect(err.issues?.[0]?.message ?? String(err)).toContain(message);
    expect(world.fake.requests).toHaveLength(0);
  });

  it.each([
    ['a range longer than 7 days', { start: DAY, end: '2026-01-08T00:00:00.001Z' }, 'at most 7 days'],
    ['an end before the start', { start: NEXT_DAY, end: DAY }, 'end must be after start'],
    ['no start', { end: DAY }, 'start'],
    ['a time without an offset', { start: '2026-01-01T00:00:00', end: NEXT_DAY }, 'start'],
  ])('refuses %s', async (_what, times, message) => {
    const err = await failure(run(provider, 'cloudlogs.query_entries', { project: 'proj-alpha', ...times }));
    expect(JSON.stringify(err.issues)).toContain(message);
  });

  it('accepts exactly 7 days and at most 1000 entries per page', async () => {
    await run(provider, 'cloudlogs.query_entries', { project: 'proj-alpha', start: DAY, end: '2026-01-08T00:00:00Z', limit: 1000 });
    expect(world.fake.requests[0]!.request['pageSize']).toBe(1000);
    await expect(run(provider, 'cloudlogs.query_entries', { ...range, limit: 1001 })).rejects.toThrow();
  });

  it('pages through results with page tokens', async () => {
    world.fake.entries.set('proj-alpha', [1, 2, 3, 4, 5].map((i) => ({ timestamp: at(i), textPayload: `m${i}`, insertId: `e${i}` })));
    const ids: string[][] = [];
    let token: string | null | undefined;
    do {
      const page = await run(provider, 'cloudlogs.query_entries', { ...range, order: 'asc', limit: 2, ...(token ? { page_token: token } : {}) });
      ids.push(page.entries.map((e: any) => e.insertId));
      token = page.next_page_token;
    } while (token);
    expect(ids).toEqual([['e1', 'e2'], ['e3', 'e4'], ['e5']]);
    expect(world.fake.requests.map((r) => r.request['pageToken'])).toEqual([undefined, '2', '4']);
  });

  it('refuses a page token issued for another query', async () => {
    world.fake.entries.set('proj-alpha', [1, 2, 3].map((i) => ({ timestamp: at(i), textPayload: `m${i}` })));
    const page = await run(provider, 'cloudlogs.query_entries', { ...range, limit: 2 });
    const err = await failure(run(provider, 'cloudlogs.query_entries', { ...range, limit: 2, filter: 'severity>=ERROR', page_token: page.next_page_token }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('validation_failed');
    const bad = await failure(run(provider, 'cloudlogs.query_entries', { ...range, page_token: 'not-a-token' }));
    expect(bad.code).toBe('validation_failed');
    expect(world.fake.requests).toHaveLength(1);
  });

  it('returns trimmed entries: text or JSON payloads, resource, labels, trace', async () => {
    world.fake.entries.set('proj-alpha', [
      {
        timestamp: '2026-01-01T00:00:01.250Z',
        severity: 'WARNING',
        insertId: 'j1',
        log: 'app',
        jsonPayload: { message: 'slow', ms: 1200, tags: ['a', null, true], nested: { ok: false } },
        labels: { env: 'prod' },
        resource: { type: 'k8s_container', labels: { cluster_name: 'c1' } },
        trace: 'projects/proj-alpha/traces/abc',
      },
      { timestamp: at(2), insertId: 't1', textPayload: 'plain' },
    ]);
    const { entries } = await run(provider, 'cloudlogs.query_entries', { ...range, order: 'asc' });
    expect(entries).toEqual([
      {
        timestamp: '2026-01-01T00:00:01.250Z',
        severity: 'WARNING',
        logName: 'projects/proj-alpha/logs/app',
        resource: { type: 'k8s_container', labels: { cluster_name: 'c1' } },
        labels: { env: 'prod' },
        jsonPayload: { message: 'slow', ms: 1200, tags: ['a', null, true], nested: { ok: false } },
        trace: 'projects/proj-alpha/traces/abc',
        insertId: 'j1',
      },
      {
        timestamp: at(2),
        severity: 'DEFAULT',
        logName: 'projects/proj-alpha/logs/stdout',
        resource: { type: 'global', labels: { project_id: 'proj-alpha' } },
        labels: {},
        textPayload: 'plain',
        insertId: 't1',
      },
    ]);
  });

  it('caps each payload at 8 KiB and marks it truncated', async () => {
    world.fake.entries.set('proj-alpha', [
      { timestamp: at(1), insertId: 'big-text', textPayload: 'é'.repeat(10_000) },
      { timestamp: at(2), insertId: 'big-json', jsonPayload: { blob: 'x'.repeat(20_000) } },
    ]);
    const { entries } = await run(provider, 'cloudlogs.query_entries', { ...range, order: 'asc' });
    expect(entries[0].payloadTruncated).toBe(true);
    expect(entries[0].textPayload).toBe('é'.repeat(4096));
    expect(entries[1].payloadTruncated).toBe(true);
    expect(entries[1].jsonPayload).toBe(`{"blob":"${'x'.repeat(8192 - 9)}`);
  });

  it('redacts token-like strings and the host key material in entries', async () => {
    const ghToken = `ghp_${'a1B2'.repeat(9)}`;
    world.fake.entries.set('proj-alpha', [
      { timestamp: at(1), insertId: 'r1', textPayload: `cloning with ${ghToken} now` },
      { timestamp: at(2), insertId: 'r2', jsonPayload: { headers: { authorization: 'Bearer abcdefghijklmnopqrstuvwxyz' }, note: `key id ${world.account.privateKeyId}` } },
      { timestamp: at(3), insertId: 'r3', textPayload: `leaked ${world.account.privateKeyPem}` },
    ]);
    const result = await run(provider, 'cloudlogs.query_entries', { ...range, order: 'asc' });
    const text = JSON.stringify(result);
    expect(text).not.toContain(ghToken);
    expect(text).not.toContain(world.account.privateKeyId);
    expect(text).not.toContain('PRIVATE KEY');
    expect(result.entries[0].textPayload).toBe('cloning with [REDACTED] now');
    expect(result.entries[1].jsonPayload).toEqual({ headers: { authorization: '[REDACTED]' }, note: 'key id [REDACTED]' });
  });

  it('maps a filter Cloud Logging rejects to 422 and other failures to provider_error', async () => {
    world.fake.failNext = { code: grpc.status.INVALID_ARGUMENT, details: 'Unparseable filter: syntax error at line 1' };
    const invalid = await failure(run(provider, 'cloudlogs.query_entries', { ...range, filter: 'severity>>ERROR' }));
    expect(invalid).toBeInstanceOf(ApiError);
    expect(invalid.status).toBe(422);
    expect(invalid.detail).toContain('Unparseable filter');

    world.fake.failNext = { code: grpc.status.PERMISSION_DENIED, details: 'The caller does not have permission' };
    const denied = await failure(run(provider, 'cloudlogs.query_entries', range));
    expect(denied).toBeInstanceOf(ProviderError);
    expect([denied.providerStatus, denied.providerCode]).toEqual([403, 'PERMISSION_DENIED']);
  });
});

describe('the result-size cap', () => {
  let small: Provider;
  beforeAll(() => {
    small = cloudLogsProvider({ ...world.env, CLOUDLOGS_MAX_RESULT_BYTES: '4096' });
  });
  afterAll(() => small.close?.());

  it('cuts a page at the cap and resumes exactly where it was cut', async () => {
    world.fake.entries.set('proj-alpha', [1, 2, 3, 4, 5].map((i) => ({ timestamp: at(i), insertId: `c${i}`, textPayload: 'p'.repeat(1500) })));
    const range = { project: 'proj-alpha', start: DAY, end: NEXT_DAY, order: 'asc', limit: 5 };
    const first = await run(small, 'cloudlogs.query_entries', range);
    expect(first.truncated).toBe(true);
    expect(first.entries.map((e: any) => e.insertId)).toEqual(['c1', 'c2']);
    expect(Buffer.byteLength(JSON.stringify(first.entries))).toBeLessThanOrEqual(4096);
    const second = await run(small, 'cloudlogs.query_entries', { ...range, page_token: first.next_page_token });
    const third = await run(small, 'cloudlogs.query_entries', { ...range, page_token: second.next_page_token });
    expect([second.entries, third.entries].map((es) => es.map((e: any) => e.insertId))).toEqual([['c3', 'c4'], ['c5']]);
    expect(third).toMatchObject({ truncated: false, next_page_token: null });
    expect(world.fake.requests.map((r) => r.request['pageToken'])).toEqual([undefined, undefined, undefined]);
  });
});

describe('cloudlogs.tail_entries', () => {
  const batch = (n: number, from = 0): FakeEntry[] =>
    Array.from({ length: n }, (_, i) => ({ timestamp: at(from + i), insertId: `t${from + i}`, textPayload: `line ${from + i}` }));

  it('stops at its time window and closes the stream', async () => {
    world.fake.tail = { batches: [batch(2)], suppressed: 3 };
    const ended = world.fake.nextTailEnd();
    const result = await run(provider, 'cloudlogs.tail_entries', { project: 'proj-beta', filter: 'severity>=INFO', window_ms: 300 });
    await ended;
    expect(result).toMatchObject({ project: 'proj-beta', filter: 'severity>=INFO', stop_reason: 'window', suppressed: 3 });
    expect(result.entries.map((e: any) => e.textPayload)).toEqual(['line 0', 'line 1']);
    expect(world.fake.requests).toEqual([
      expect.objectContaining({ method: 'TailLogEntries', request: { resourceNames: ['projects/proj-beta'], filter: 'severity>=INFO' } }),
    ]);
    expect(world.fake.tailCancellations).toBeGreaterThan(0);
  });

  it('stops at its entry bound, before its window, and closes the stream', async () => {
    world.fake.tail = { batches: [batch(200), batch(200, 200), batch(200, 400)] };
    const cancelled = world.fake.tailCancellations;
    const ended = world.fake.nextTailEnd();
    const result = await run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 30_000, limit: 500 });
    await ended;
    expect(result.stop_reason).toBe('limit');
    expect(result.entries).toHaveLength(500);
    expect(result.entries.at(-1).insertId).toBe('t499');
    expect(world.fake.tailCancellations).toBe(cancelled + 1);
  });

  it('returns when the service ends the stream', async () => {
    world.fake.tail = { batches: [batch(1)], keepOpen: false };
    const result = await run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 30_000 });
    expect(result.stop_reason).toBe('stream_end');
    expect(result.entries).toHaveLength(1);
  });

  it('stops when the broker aborts the call', async () => {
    world.fake.tail = { batches: [batch(1)] };
    const controller = new AbortController();
    const ended = world.fake.nextTailEnd();
    const pending = run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 30_000 }, controller.signal);
    while (world.fake.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort(new Error('provider timeout'));
    await expect(pending).rejects.toThrow('provider timeout');
    await ended;
  });

  it('refuses windows over 30 s and more than 500 entries', async () => {
    await expect(run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 30_001 })).rejects.toThrow();
    await expect(run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', limit: 501 })).rejects.toThrow();
    expect(world.fake.requests).toHaveLength(0);
  });
});

describe('project scope', () => {
  it.each([
    ['cloudlogs.list_logs', {}],
    ['cloudlogs.query_entries', { start: DAY, end: NEXT_DAY }],
    ['cloudlogs.tail_entries', { window_ms: 100 }],
  ])('%s refuses a project outside CLOUDLOGS_PROJECT_IDS with 403 and sends nothing', async (id, extra) => {
    const err = await failure(run(provider, id, { project: 'proj-gamma', ...extra }));
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.code]).toEqual([403, 'resource_out_of_scope']);
    expect(world.fake.requests).toHaveLength(0);
  });
});
