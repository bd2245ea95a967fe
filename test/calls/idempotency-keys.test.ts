/**
 * Step 3 answers from the call's row: a key claimed elsewhere (by another connection or process),
 * long ago (by a process that has restarted since) or in this process is replayed, refused or
 * answered 409 exactly as the stored row says, and never run again.
 */
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/platform/db/open.js';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { auditKinds, call, grant, type CallBody } from './helpers.js';
import { testProvider, type TestProvider } from './provider.js';

const DAY = 24 * 3600 * 1000;
const BODY: CallBody = { action: 'test.read', params: { resource: 'acme/api' } };
const fingerprint = (body: CallBody) => createHash('sha256').update(JSON.stringify(body)).digest('hex');

let broker: TestBroker | undefined;
let tp: TestProvider | undefined;
let other: Db | undefined;
afterEach(async () => {
  other?.sqlite.close();
  tp?.release();
  await broker?.stop();
  broker = tp = other = undefined;
});

/** Writes committed by the call path's group commit so far (claims, outcomes, refusals). */
async function committedWrites(b: TestBroker): Promise<number> {
  const metric = b.deps.metrics.registry.getSingleMetric('broker_call_commit_batch_writes');
  const values = (await metric!.get()).values;
  return values.find((v) => (v as { metricName?: string }).metricName === 'broker_call_commit_batch_writes_sum')?.value ?? 0;
}

/** Inserts a finished (or running) call row on `db`, as another process would. */
function insertCall(db: Db, key: string, createdAt: number, opts: { status?: 'succeeded' | 'running'; body?: CallBody } = {}): string {
  const response = JSON.stringify({ request_id: key, status: 'succeeded', action: 'test.read', result: { from: 'elsewhere' }, receipt: { steps: [] }, duration_ms: 3 });
  const running = opts.status === 'running';
  db.sqlite
    .prepare(
      `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, http_status, response, receipt, attempts, created_at, finished_at, duration_ms)
       VALUES ('developer', ?, ?, 'test.read', 1, 'acme/api', 'read acme/api', NULL, 'grt_elsewhere', ?, ?, ?, '{}', 1, ?, ?, ?)`,
    )
    .run(key, fingerprint(opts.body ?? BODY), running ? 'running' : 'succeeded', running ? null : 200, running ? null : response, createdAt, running ? null : createdAt, running ? null : 3);
  return response;
}

describe('idempotency keys answered from their rows', () => {
  it('a key claimed by another connection is answered from its row on the very next request', async () => {
    tp = testProvider();
    broker = await startBroker({ providers: [tp.provider] });
    await grant(broker, { level: 1 });
    expect((await call(broker, 'developer', BODY)).status).toBe(200);
    other = openDb({ path: path.join(broker.dataDir, 'broker.db') });
    const now = broker.clock.now();

    // Answered at step 3 from the row: no claim is attempted (a replay writes nothing; a refusal
    // writes its audit row only).
    const done = randomUUID();
    const stored = insertCall(other, done, now);
    let writes = await committedWrites(broker);
    const replay = await call(broker, 'developer', BODY, done);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    expect(replay.body).toEqual(JSON.parse(stored));
    expect(await committedWrites(broker)).toBe(writes);

    const reused = randomUUID();
    insertCall(other, reused, now);
    const conflict = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/other' } }, reused);
    expect([conflict.status, conflict.body.code]).toEqual([422, 'idempotency_key_reused']);
    expect(await committedWrites(broker)).toBe(writes + 1);
    writes += 1;

    const running = randomUUID();
    insertCall(other, running, now, { status: 'running' });
    const busy = await call(broker, 'developer', BODY, running);
    expect([busy.status, busy.body.code]).toEqual([409, 'request_in_flight']);
    expect(await committedWrites(broker)).toBe(writes + 1);

    for (const key of [done, reused, running]) expect(tp.attemptsOf(key)).toBe(0);
  });

  it('a key claimed 8 days ago, before a restart, still replays its stored answer and never runs again', async () => {
    const dataDir = tempDir();
    const startMs = Date.UTC(2026, 0, 20);
    tp = testProvider();
    broker = await startBroker({ dataDir, providers: [tp.provider], startMs });
    await grant(broker, { level: 1 });
    const old = randomUUID();
    const stored = insertCall(broker.deps.db, old, startMs - 8 * DAY);
    await broker.stop();
    tp.release();

    // A new process: the old key was claimed by another.
    tp = testProvider();
    broker = await startBroker({ dataDir, providers: [tp.provider], startMs });
    const replay = await call(broker, 'developer', BODY, old);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    expect(replay.body).toEqual(JSON.parse(stored));
    expect(tp.attemptsOf(old)).toBe(0);
    expect(await auditKinds(broker, 'developer', old)).toEqual([]);

    const reused = await call(broker, 'developer', { action: 'test.read', params: { resource: 'acme/other' } }, old);
    expect([reused.status, reused.body.code]).toEqual([422, 'idempotency_key_reused']);
    expect(tp.attemptsOf(old)).toBe(0);
  });

  it('a key claimed in this process is replayed after the call ended, with the row the group commit wrote', async () => {
    tp = testProvider();
    broker = await startBroker({ providers: [tp.provider] });
    await grant(broker, { level: 1 });
    // At most 5 pending per group (backpressure): batches of 4.
    const keys = Array.from({ length: 12 }, () => randomUUID());
    for (let i = 0; i < keys.length; i += 4) {
      const batch = keys.slice(i, i + 4);
      const first = await Promise.all(batch.map((k) => call(broker!, 'developer', BODY, k)));
      expect(first.map((r) => r.status)).toEqual(batch.map(() => 200));
    }
    const writes = await committedWrites(broker);
    for (const k of keys) {
      const again = await call(broker, 'developer', BODY, k);
      expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    }
    expect(await committedWrites(broker)).toBe(writes); // replays: no claim attempted
    for (const k of keys) expect(tp.attemptsOf(k)).toBe(1);
  });
});
