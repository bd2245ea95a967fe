/**
 * The file transport against a real broker (real port, real SQLite file) and real directories:
 * the same answers as HTTP (success, replay, refusals), many writers at once, files written in
 * pieces, the transport's own refusals (another group's key, an operator route), and the inflight
 * lock and backpressure exactly as over HTTP.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { auditKinds, grant } from '../calls/helpers.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { answerOf, drop, names, signedFile, startIpcBroker, until, type IpcBroker } from './helpers.js';

let b: IpcBroker;
let tp: TestProvider;
beforeEach(async () => {
  tp = testProvider();
  b = await startIpcBroker({ providers: [tp.provider] });
});
afterEach(async () => {
  tp.release();
  await b.ipc.idle();
  expect(verifyChain(b.broker.deps.db).ok).toBe(true);
  await b.stop();
});

describe('the IPC directories', () => {
  it('are made 0700 for every group, with requests/, processing/, responses/ and rejected/', () => {
    for (const group of ['main', 'developer', 'security']) {
      expect(fs.statSync(b.dir(group)).mode & 0o777).toBe(0o700);
      for (const sub of ['requests', 'processing', 'responses', 'rejected']) expect(fs.statSync(b.dir(group, sub)).mode & 0o777).toBe(0o700);
    }
  });
});

describe('a request file', () => {
  it('is answered as over HTTP: whoami, a call, its replay, and the same audit rows', async () => {
    await grant(b.broker, { level: 1 });
    const dev = b.client('developer');
    const me = await dev.get('/v1/whoami');
    expect([me.status, me.body]).toEqual([200, { group: 'developer', key_version: 1, keyid: 'developer:1' }]);

    const key = randomUUID();
    const first = await dev.post('/v1/ext/calls', { action: 'test.read', params: { resource: 'acme/api' } }, { idempotencyKey: key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ request_id: key, status: 'succeeded', action: 'test.read', result: { attempt: 1 } });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await dev.post('/v1/ext/calls', { action: 'test.read', params: { resource: 'acme/api' } }, { idempotencyKey: key });
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    expect(again.body).toEqual(first.body);
    expect(tp.attemptsOf(key)).toBe(1);
    expect(await auditKinds(b.broker, 'developer', key)).toEqual(['call.claimed', 'call.succeeded']);
    // The same call over HTTP replays it too: one decision path, one key space.
    const http = await b.broker.client('developer').post('/v1/ext/calls', { action: 'test.read', params: { resource: 'acme/api' } }, { idempotencyKey: key });
    expect([http.status, http.headers.get('idempotent-replayed')]).toEqual([200, 'true']);

    const reused = await dev.post('/v1/ext/calls', { action: 'test.read', params: { resource: 'acme/web' } }, { idempotencyKey: key });
    expect([reused.status, reused.body.code]).toEqual([422, 'idempotency_key_reused']);
    const denied = await b.client('security').post('/v1/ext/calls', { action: 'test.read' });
    expect([denied.status, denied.body.code, denied.body.receipt.decision]).toEqual([403, 'no_capability', 'denied']);
    expect(names(b, 'developer', 'processing')).toEqual([]);
    expect(names(b, 'developer', 'requests')).toEqual([]);
  });

  it('gets the verifier\'s answers: a changed body is digest_mismatch, a stale signature signature_expired', async () => {
    const file = await signedFile(b, 'main', 'POST', '/v1/tasks', { json: { title: 'signed', type: 'BUG' } });
    drop(b, 'main', 'tampered.json', { ...file, body: JSON.stringify({ title: 'changed', type: 'BUG' }) });
    const tampered = await answerOf(b, 'main', 'tampered');
    expect([tampered.status, (tampered.body as { code: string }).code]).toEqual([401, 'digest_mismatch']);
    expect(tampered.headers['www-authenticate']).toMatch(/^Signature /);
    const other = await signedFile(b, 'main', 'GET', '/v1/tasks', { query: { limit: 5 } });
    drop(b, 'main', 'query.json', { ...other, query: 'limit=6' });
    expect((await answerOf(b, 'main', 'query')).body).toMatchObject({ code: 'signature_invalid' });
    const stale = await signedFile(b, 'main', 'GET', '/v1/whoami');
    b.broker.clock.advance(301_000);
    drop(b, 'main', 'stale.json', stale);
    expect((await answerOf(b, 'main', 'stale')).body).toMatchObject({ code: 'signature_expired' });
  });

  it('signed with another group\'s key, or naming an operator route, is refused 403 forbidden and never reaches the app', async () => {
    const security = await signedFile(b, 'security', 'GET', '/v1/whoami');
    drop(b, 'developer', 'foreign.json', security);
    const foreign = await answerOf(b, 'developer', 'foreign');
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatchObject({ code: 'forbidden' });
    expect((foreign.body as { detail: string }).detail).toMatch(/signed with the key of developer; this one names security/);

    const grants = await signedFile(b, 'main', 'POST', '/v1/grants', { json: { group: 'developer', provider: 'test', level: 1, reason: 'by file' } });
    drop(b, 'main', 'operator.json', grants);
    const operator = await answerOf(b, 'main', 'operator');
    expect([operator.status, (operator.body as { code: string }).code]).toEqual([403, 'forbidden']);
    expect((await b.broker.client('developer').get('/v1/ext/capabilities')).body.actions.find((a: { action: string }) => a.action === 'test.read').allowed).toBe(false);
    expect(b.broker.logs.join('')).not.toMatch(/"path":"\/v1\/grants"/); // the app never saw it
  });
});

describe('many writers at once', () => {
  it('answers every file once, each with its own answer, across groups', async () => {
    const files = [];
    for (const group of ['main', 'developer', 'security']) {
      for (let i = 0; i < 10; i += 1) files.push({ group, id: `who-${group}-${i}`, file: await signedFile(b, group, 'GET', '/v1/whoami') });
    }
    for (let i = 0; i < 15; i += 1) files.push({ group: 'main', id: `task-${i}`, file: await signedFile(b, 'main', 'POST', '/v1/tasks', { json: { title: `task ${i}`, type: 'BUG' } }) });
    await Promise.all(files.map(async ({ group, id, file }) => drop(b, group, `${id}.json`, file)));
    for (const { group, id } of files) {
      const answer = await answerOf(b, group, id);
      expect(answer.request_id).toBe(id);
      if (id.startsWith('who-')) expect([answer.status, (answer.body as { group: string }).group]).toEqual([200, group]);
      else expect([answer.status, (answer.body as { title: string }).title]).toEqual([201, `task ${id.slice(5)}`]);
    }
    await b.ipc.idle();
    const tasks = b.broker.deps.db.sqlite.prepare('SELECT title FROM tasks').all() as { title: string }[];
    expect(tasks.map((t) => t.title).sort()).toEqual(Array.from({ length: 15 }, (_, i) => `task ${i}`).sort());
    for (const group of ['main', 'developer', 'security']) {
      expect(names(b, group, 'requests')).toEqual([]);
      expect(names(b, group, 'processing')).toEqual([]);
      expect(names(b, group, 'rejected')).toEqual([]);
    }
  });
});

describe('a file written in pieces', () => {
  it('is never read under its temporary name, only once renamed to <id>.json', async () => {
    const text = JSON.stringify(await signedFile(b, 'main', 'POST', '/v1/tasks', { json: { title: 'pieces', type: 'BUG' } }));
    const temps = [b.dir('main', 'requests', '.pieces.json'), b.dir('main', 'requests', 'pieces.json.tmp')];
    const third = Math.ceil(text.length / 3);
    for (let piece = 0; piece < 3; piece += 1) {
      for (const t of temps) fs.appendFileSync(t, text.slice(piece * third, (piece + 1) * third));
      await b.ipc.sweep(); // a whole sweep (and the watcher's events) between the pieces
      await b.ipc.idle();
      expect(names(b, 'main', 'requests', true)).toEqual(['.pieces.json', 'pieces.json.tmp']);
      expect([...names(b, 'main', 'processing', true), ...names(b, 'main', 'responses', true), ...names(b, 'main', 'rejected', true)]).toEqual([]);
    }
    fs.renameSync(temps[1]!, b.dir('main', 'requests', 'pieces.json'));
    const answer = await answerOf(b, 'main', 'pieces');
    expect([answer.status, (answer.body as { title: string }).title]).toEqual([201, 'pieces']);
    expect(names(b, 'main', 'requests', true)).toEqual(['.pieces.json']); // still being written: left alone
    expect(names(b, 'main', 'rejected')).toEqual([]);
  });
});

describe('the inflight lock and backpressure, as over HTTP', () => {
  it('10 files with one Idempotency-Key execute once: the twins are answered 409 request_in_flight, then a replay', async () => {
    await grant(b.broker, { level: 1 });
    const key = randomUUID();
    const file = await signedFile(b, 'developer', 'POST', '/v1/ext/calls', { json: { action: 'test.read', params: { wait: true } }, idempotencyKey: key });
    for (let i = 0; i < 10; i += 1) drop(b, 'developer', `twin-${i}.json`, file);
    await tp.untilWaiting(1);
    // Nine answers arrive while the one execution is held.
    while (names(b, 'developer', 'responses').length < 9) await new Promise((r) => setTimeout(r, 10));
    const held: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      const f = b.dir('developer', 'responses', `twin-${i}.json`);
      if (!fs.existsSync(f)) {
        held.push(i);
        continue;
      }
      const a = JSON.parse(fs.readFileSync(f, 'utf8'));
      expect([a.status, a.body.code, a.headers['retry-after']]).toEqual([409, 'request_in_flight', '1']);
    }
    expect(held).toHaveLength(1);
    expect(tp.waiting()).toBe(1);
    tp.release();
    const done = await answerOf(b, 'developer', `twin-${held[0]}`);
    expect([done.status, (done.body as { status: string }).status]).toEqual([200, 'succeeded']);
    drop(b, 'developer', 'again.json', file);
    const replay = await answerOf(b, 'developer', 'again');
    expect([replay.status, replay.headers['idempotent-replayed']]).toEqual([200, 'true']);
    expect(tp.attemptsOf(key)).toBe(1);
  });

  it('20 slow calls of one group: 5 admitted, 15 answered 429 backpressure in their response files', async () => {
    await grant(b.broker, { level: 1 });
    await grant(b.broker, { group: 'security', level: 1 });
    const ids = Array.from({ length: 20 }, (_, i) => `slow-${i}`);
    const files = await Promise.all(ids.map(() => signedFile(b, 'developer', 'POST', '/v1/ext/calls', { json: { action: 'test.read', params: { wait: true } } })));
    ids.forEach((id, i) => drop(b, 'developer', `${id}.json`, files[i]!));
    await tp.untilWaiting(2); // group concurrency 2: two run, three queue
    while (names(b, 'developer', 'responses').length < 15) await new Promise((r) => setTimeout(r, 10));
    const refused = names(b, 'developer', 'responses').map((n) => JSON.parse(fs.readFileSync(b.dir('developer', 'responses', n), 'utf8')));
    expect(refused.map((a) => [a.status, a.body.code, a.headers['retry-after']])).toEqual(Array(15).fill([429, 'backpressure', '1']));
    const other = await b.client('security').post('/v1/ext/calls', { action: 'test.read' });
    expect(other.status).toBe(200);
    // One set of lanes for both transports: the group is full over HTTP too.
    const http = await b.broker.client('developer').post('/v1/ext/calls', { action: 'test.read' });
    expect([http.status, http.body.code]).toEqual([429, 'backpressure']);
    const caps = await b.client('developer').get('/v1/ext/capabilities');
    expect(caps.body.pending).toBe(5);
    expect(names(b, 'developer', 'processing')).toHaveLength(5);
    tp.release();
    for (const id of ids) await until(b.dir('developer', 'responses', `${id}.json`));
    const all = ids.map((id) => JSON.parse(fs.readFileSync(b.dir('developer', 'responses', `${id}.json`), 'utf8')));
    expect(all.filter((a) => a.status === 200)).toHaveLength(5);
    expect(all.filter((a) => a.status === 429)).toHaveLength(15);
    expect(tp.attempts.filter((a) => a.group === 'developer')).toHaveLength(5);
  });
});
