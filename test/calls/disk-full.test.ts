/**
 * A full disk under a real broker: its data directory is a real tmpfs (the tests run as root; a
 * failed mount fails the file, never skips it), filled with `dd`.
 *
 * - An action that ran while the disk filled up answers 502 `outcome_unrecorded` (call_status
 *   `unknown_outcome`), never 503 `audit_unavailable` ("nothing ran"); its key answers the same
 *   while the disk stays full, and once space returns the call ends `unknown_outcome` without a
 *   restart, and the key replays that.
 * - A claim that cannot be stored runs nothing: 503 `audit_unavailable`, key not used up.
 * - `/ready` is 503 `not_ready` while a durable write cannot commit, 200 again afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { auditKinds, call, grant, taskIn } from './helpers.js';
import { testProvider, type TestProvider } from './provider.js';

let mountDir = '';
let mounted = false;
let broker: TestBroker | undefined;
let tp: TestProvider;
let taskId: string;

beforeAll(async () => {
  mountDir = path.join(tempDir('broker-disk-full-'), 'data');
  fs.mkdirSync(mountDir);
  // Throws (and so fails every test here) when the mount is refused: this test must run as root.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', mountDir], { stdio: 'pipe' });
  mounted = true;
  tp = testProvider();
  broker = await startBroker({ dataDir: mountDir, providers: [tp.provider] });
  await grant(broker, { level: 1, allowed_actions: ['test.read'] });
  await grant(broker, { level: 2, allowed_actions: ['test.write'] });
  taskId = await taskIn(broker, 'DOING');
});

afterAll(async () => {
  tp?.release();
  await broker?.stop();
  // Lazy: should a descriptor of a file on the tmpfs still be open in this process, the tmpfs is
  // detached now and freed when the test process exits.
  if (mounted) execFileSync('umount', ['--lazy', mountDir], { stdio: 'pipe' });
});

const FILL = () => path.join(mountDir, 'fill');

/**
 * Fills the tmpfs to its last block. The WAL is checkpointed and truncated first, so the next
 * commit must grow it (otherwise a commit could reuse WAL space freed by a checkpoint).
 */
function fillDisk(): void {
  broker!.deps.db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${FILL()}`, 'bs=64k'], { stdio: 'pipe' });
  } catch {
    // dd stops with ENOSPC: the disk is full.
  }
  expect(fs.statfsSync(mountDir).bavail).toBe(0);
}

function freeDisk(): void {
  fs.rmSync(FILL());
  expect(fs.statfsSync(mountDir).bavail).toBeGreaterThan(0);
}

function statusOf(key: string): string | undefined {
  return (broker!.deps.db.sqlite.prepare('SELECT status FROM ext_calls WHERE "group" = ? AND request_id = ?').get('developer', key) as { status: string } | undefined)?.status;
}

/** A bounded poll: `fn`'s assertions until they pass (vitest `waitFor`, at most 20 s). */
const eventually = (fn: () => unknown) => vi.waitFor(fn, { timeout: 20_000, interval: 100 });

describe('an outcome that cannot be recorded after the action ran', () => {
  it('answers 502 outcome_unrecorded, the same for a retry, then unknown_outcome once space returns, without a restart', async () => {
    const b = broker!;
    const key = randomUUID();
    const body = { action: 'test.write', params: { resource: 'acme/api', wait: true }, task_id: taskId };
    const pending = call(b, 'developer', body, key);
    await tp.untilWaiting(1); // claimed (durably) and running
    expect(statusOf(key)).toBe('running');

    fillDisk();
    try {
      tp.release();
      const res = await pending;
      expect(res.status, JSON.stringify(res.body)).toBe(502);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'outcome_unrecorded', status: 502, call_status: 'unknown_outcome', request_id: key, action: 'test.write' });
      expect(res.body.detail).toMatch(/ran, but its outcome could not be recorded/);
      expect(res.body.detail).toMatch(/new Idempotency-Key/);
      expect(res.body.cause).toMatch(/full/);
      expect(statusOf(key)).toBe('running');

      // The same key while the disk is still full: the same answer, not 409 request_in_flight.
      for (let i = 0; i < 2; i++) {
        const again = await call(b, 'developer', body, key);
        expect(again.status, JSON.stringify(again.body)).toBe(502);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        expect(again.body).toEqual(res.body);
      }
    } finally {
      freeDisk();
    }

    await eventually(() => expect(statusOf(key)).toBe('unknown_outcome'));
    expect(await auditKinds(b, 'developer', key)).toEqual(['call.claimed', 'call.unknown_outcome']);
    const audit = b.deps.db.sqlite.prepare("SELECT actor, detail FROM gov_activities WHERE subject = ? AND kind = 'call.unknown_outcome'").get(`call:developer:${key}`) as { actor: string; detail: string };
    expect(audit.actor).toBe('system');
    expect(JSON.parse(audit.detail)).toMatchObject({ action: 'test.write', resource: 'acme/api', task_id: taskId, cause: 'outcome_unrecorded', observed: { status: 'succeeded', http_status: 200 } });

    const replay = await call(b, 'developer', body, key);
    expect(replay.status).toBe(502);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toMatchObject({ code: 'unknown_outcome', call_status: 'unknown_outcome', request_id: key, action: 'test.write' });
    const row = await b.client('developer').get(`/v1/ext/calls/${key}`);
    expect(row.body).toMatchObject({ status: 'unknown_outcome', http_status: 502 });

    expect(tp.attemptsOf(key)).toBe(1);
    expect(verifyChain(b.deps.db).ok).toBe(true);
  });

  it('answers 503 audit_unavailable and runs nothing when the claim cannot be stored; the key stays unused', async () => {
    const b = broker!;
    const key = randomUUID();
    fillDisk();
    try {
      const res = await call(b, 'developer', { action: 'test.read' }, key);
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.body.code).toBe('audit_unavailable');
      expect(tp.attemptsOf(key)).toBe(0);
      expect(statusOf(key)).toBeUndefined();
    } finally {
      freeDisk();
    }
    const later = await call(b, 'developer', { action: 'test.read' }, key);
    expect(later.status, JSON.stringify(later.body)).toBe(200);
    expect(tp.attemptsOf(key)).toBe(1);
  });
});

describe('/ready on a full disk', () => {
  it('is 503 not_ready while a durable write cannot commit, and 200 once space returns', async () => {
    const b = broker!;
    expect((await fetch(`${b.url}/ready`)).status).toBe(200);
    fillDisk();
    try {
      await eventually(async () => {
        const res = await fetch(`${b.url}/ready`);
        expect(res.status).toBe(503);
        const problem = (await res.json()) as { code: string; reasons: string[] };
        expect(problem.code).toBe('not_ready');
        expect(problem.reasons.join(' ')).toMatch(/database is not writable: .*full/);
      });
    } finally {
      freeDisk();
    }
    await eventually(async () => expect((await fetch(`${b.url}/ready`)).status).toBe(200));
  });
});
