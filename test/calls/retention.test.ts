/**
 * Retention of call rows (idempotency keys): `purgeCalls` against a real broker's SQLite file with
 * calls made through the real server and a manual clock; the purged key claimable again; the
 * batches and their audit rows; the `serve` loop; `BROKER_CALL_RETENTION`; `broker calls purge`.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { purgeCommand } from '../../src/modules/calls/cli.js';
import { countPurgeable, purgeCalls, startCallRetention } from '../../src/modules/calls/retention.js';
import { PURGE_SELECT_SQL, SqliteCallStore } from '../../src/modules/calls/store.js';
import { CliExit } from '../../src/platform/cli.js';
import { ConfigError, loadConfig } from '../../src/platform/config.js';
import { openDb } from '../../src/platform/db/open.js';
import { createLogger } from '../../src/platform/log.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { auditKinds, call, grant } from './helpers.js';
import { testProvider, type TestProvider } from './provider.js';

const DAY = 24 * 3600 * 1000;
const RETENTION = 30 * DAY;
const READ = { action: 'test.read', params: { resource: 'acme/api' } };

let broker: TestBroker;
let tp: TestProvider;
beforeEach(async () => {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider], startMs: Date.UTC(2026, 0, 1) });
  await grant(broker, { level: 1 });
});
afterEach(async () => {
  tp.release();
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
});

/** Makes a call through the server as developer and expects `status`; returns its key. */
async function made(body: Record<string, unknown> = READ, status = 200, key = randomUUID()): Promise<string> {
  const res = await call(broker, 'developer', body as never, key);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return key;
}

/** The developer keys still in `ext_calls`, oldest first. */
const keysLeft = () =>
  (broker.deps.db.sqlite.prepare(`SELECT request_id AS k FROM ext_calls WHERE "group" = 'developer' ORDER BY rowid`).all() as { k: string }[]).map((r) => r.k);

/** The `calls.purged` audit rows: actor and parsed detail. */
const purgedRows = () =>
  (broker.deps.db.sqlite.prepare(`SELECT actor, subject, detail FROM gov_activities WHERE kind = 'calls.purged' ORDER BY seq`).all() as { actor: string; subject: string; detail: string }[]).map(
    (r) => ({ actor: r.actor, subject: r.subject, ...(JSON.parse(r.detail) as { before: string; deleted: number }) }),
  );

const cutoff = () => broker.clock.now() - RETENTION;

describe('purgeCalls', () => {
  it('deletes finished calls older than the cutoff (unknown_outcome included), keeps younger and running ones, audited once', async () => {
    const ok = await made();
    const failed = await made({ action: 'test.read', params: { reject: true } }, 502);
    // A call still running (waiting in the provider) long past the cutoff.
    const runningKey = randomUUID();
    const running = call(broker, 'developer', { action: 'test.read', params: { wait: true } }, runningKey);
    await tp.untilWaiting(1);
    // An interrupted call, as crash recovery leaves it.
    const lost = randomUUID();
    broker.deps.db.sqlite
      .prepare(
        `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, grant_id, status, http_status, response, receipt, created_at)
         VALUES ('developer', ?, 'x', 'test.read', 1, 'acme/api', 's', 'grt_x', 'unknown_outcome', 502, '{}', '{}', ?)`,
      )
      .run(lost, broker.clock.now());

    broker.clock.advance(RETENTION + DAY);
    const young = await made();
    const before = cutoff();
    expect(await countPurgeable(broker.deps, before)).toBe(3);

    expect(await purgeCalls(broker.deps, { before })).toBe(3);
    expect(keysLeft()).toEqual([runningKey, young]);
    for (const gone of [ok, failed, lost]) expect(keysLeft()).not.toContain(gone);
    expect(purgedRows()).toEqual([{ actor: 'system', subject: 'ext_calls', before: new Date(before).toISOString(), deleted: 3 }]);

    // Nothing left to purge: no transaction, no audit row.
    expect(await purgeCalls(broker.deps, { before })).toBe(0);
    expect(purgedRows()).toHaveLength(1);

    tp.release();
    expect((await running).status).toBe(200);
  });

  it('keeps the row at the cutoff instant and deletes the one a millisecond older', async () => {
    const older = await made();
    broker.clock.advance(1);
    const atCutoff = await made();
    broker.clock.advance(RETENTION);
    const young = await made();
    // `before` = created_at of atCutoff: strictly older rows only.
    expect(await purgeCalls(broker.deps, { before: broker.clock.now() - RETENTION })).toBe(1);
    expect(keysLeft()).toEqual([atCutoff, young]);
    expect(keysLeft()).not.toContain(older);
  });

  it('deletes in batches of batchSize rows, one calls.purged audit row per batch that deleted something', async () => {
    for (let i = 0; i < 5; i++) await made();
    broker.clock.advance(RETENTION + DAY);
    const young = await made();
    expect(await purgeCalls(broker.deps, { before: cutoff(), batchSize: 2 })).toBe(5);
    expect(keysLeft()).toEqual([young]);
    const rows = purgedRows();
    expect(rows.map((r) => r.deleted)).toEqual([2, 2, 1]);
    expect(rows.reduce((n, r) => n + r.deleted, 0)).toBe(5);
    expect(verifyChain(broker.deps.db).ok).toBe(true);
    await expect(purgeCalls(broker.deps, { before: cutoff(), batchSize: 0 })).rejects.toThrow(RangeError);
  });

  it('uses ext_calls_status_idx (status, created_at) to find the rows', () => {
    const plan = (broker.deps.db.sqlite.prepare(`EXPLAIN QUERY PLAN ${PURGE_SELECT_SQL}`).all({ before: 0, limit: 10 }) as { detail: string }[]).map((r) => r.detail);
    expect(plan.join('\n')).toMatch(/SEARCH ext_calls USING COVERING INDEX ext_calls_status_idx \(status=\? AND created_at<\?\)/);
    expect(plan.join('\n')).not.toMatch(/SCAN ext_calls(?! USING)/);
  });

  it('never deletes the newest row, so rowids keep increasing', async () => {
    const a = await made();
    const b = await made();
    const newest = () => broker.deps.db.sqlite.prepare('SELECT max(rowid) FROM ext_calls').pluck().get() as number;
    const before = newest();
    broker.clock.advance(RETENTION + DAY);
    expect(await purgeCalls(broker.deps, { before: cutoff() })).toBe(1);
    expect(keysLeft()).toEqual([b]);
    expect(keysLeft()).not.toContain(a);
    await made();
    expect(newest()).toBeGreaterThan(before);
  });
});

describe('a purged key', () => {
  it('is claimable again: the same key with another body starts a new call instead of 422 idempotency_key_reused', async () => {
    const key = await made();
    broker.clock.advance(RETENTION + DAY);
    await made(); // a newer call, so the old one is not the newest row
    const other = { action: 'test.read', params: { resource: 'acme/web' } };
    // Before the purge: refused (the server's memory still holds the key's hash).
    const refused = await call(broker, 'developer', other, key);
    expect([refused.status, refused.body.code]).toEqual([422, 'idempotency_key_reused']);

    expect(await purgeCalls(broker.deps, { before: cutoff() })).toBe(1);
    const res = await call(broker, 'developer', other, key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(res.body).toMatchObject({ request_id: key, status: 'succeeded', result: { resource: 'acme/web' } });
    expect(tp.attemptsOf(key)).toBe(2);
    expect(await auditKinds(broker, 'developer', key)).toEqual(['call.claimed', 'call.succeeded', 'call.rejected', 'call.claimed', 'call.succeeded']);
    // And the new row is the key's answer from now on.
    const replay = await call(broker, 'developer', other, key);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
  });
});

describe('the serve loop (startCallRetention)', () => {
  it('purges at start-up with before = clock - BROKER_CALL_RETENTION and logs {deleted}', async () => {
    await made();
    await made();
    broker.clock.advance(RETENTION + DAY);
    await made();
    expect(broker.deps.config.callRetentionMs).toBe(RETENTION);
    const stop = startCallRetention(broker.deps);
    try {
      await expect.poll(() => broker.logs.find((l) => l.includes('old call rows purged'))).toBeDefined();
    } finally {
      stop();
    }
    const line = JSON.parse(broker.logs.find((l) => l.includes('old call rows purged'))!) as { level: number; deleted: number; before: string };
    expect(line).toMatchObject({ level: 30, deleted: 2, before: new Date(cutoff()).toISOString() });
    expect(keysLeft()).toHaveLength(1);
  });

  it('logs a failed purge instead of throwing (a read-only database)', async () => {
    await made();
    await made();
    broker.clock.advance(RETENTION + DAY);
    const ro = openDb({ path: broker.deps.db.path, readonly: true });
    const logs: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (logs.push(chunk.toString()), cb()) });
    const stop = startCallRetention({ stores: { calls: new SqliteCallStore(ro) }, clock: broker.clock, config: broker.deps.config, logger: createLogger('info', sink) });
    try {
      await expect.poll(() => logs.find((l) => l.includes('call purge failed'))).toBeDefined();
    } finally {
      stop();
      ro.sqlite.close();
    }
    expect(keysLeft()).toHaveLength(2);
  });
});

describe('BROKER_CALL_RETENTION', () => {
  const base = { BROKER_DATA_DIR: '/tmp/unused' };
  it('defaults to 30 days and accepts durations and bare seconds of at least 7 days', () => {
    expect(loadConfig(base).callRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ ...base, BROKER_CALL_RETENTION: '30d' }).callRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ ...base, BROKER_CALL_RETENTION: '7d' }).callRetentionMs).toBe(7 * DAY);
    expect(loadConfig({ ...base, BROKER_CALL_RETENTION: '604800' }).callRetentionMs).toBe(7 * DAY);
    expect(loadConfig({ ...base, BROKER_CALL_RETENTION: '2592000' }).callRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ ...base, BROKER_CALL_RETENTION: '2w' }).callRetentionMs).toBe(14 * DAY);
  });

  it.each(['6d', '604799', '1h', 'forever', '', '-30d'])('refuses %j, naming the variable', (value) => {
    expect(() => loadConfig({ ...base, BROKER_CALL_RETENTION: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, BROKER_CALL_RETENTION: value })).toThrow(/BROKER_CALL_RETENTION/);
  });

  it('says why under 7 days is refused: the idempotency guarantee', () => {
    expect(() => loadConfig({ ...base, BROKER_CALL_RETENTION: '6d' })).toThrow(/at least 7d: call rows are the idempotency keys.*7 days/);
  });
});

describe('broker calls purge', () => {
  it('counts with --dry-run, then deletes, audited by the operator; --older-than defaults to BROKER_CALL_RETENTION', async () => {
    await made();
    await made();
    broker.clock.advance(10 * DAY);
    const mid = await made();
    broker.clock.advance(RETENTION);
    const young = await made();

    // Default cutoff: 30 days → the two oldest.
    expect(await purgeCommand(broker.deps, { dryRun: true }, 'operator:test')).toEqual({
      before: new Date(cutoff()).toISOString(),
      dry_run: true,
      would_delete: 2,
    });
    expect(keysLeft()).toHaveLength(4);
    expect(purgedRows()).toEqual([]);

    // --older-than 8d reaches the middle one too.
    const report = await purgeCommand(broker.deps, { olderThan: '8d' }, 'operator:test');
    expect(report).toEqual({ before: new Date(broker.clock.now() - 8 * DAY).toISOString(), deleted: 3 });
    expect(keysLeft()).toEqual([young]);
    expect(keysLeft()).not.toContain(mid);
    expect(purgedRows()).toEqual([{ actor: 'operator:test', subject: 'ext_calls', before: report.before, deleted: 3 }]);
  });

  it('refuses --older-than under 7 days or not a duration', async () => {
    await expect(purgeCommand(broker.deps, { olderThan: '1d' }, 'operator:test')).rejects.toThrow(CliExit);
    await expect(purgeCommand(broker.deps, { olderThan: '167h' }, 'operator:test')).rejects.toThrow(/at least 7d/);
    await expect(purgeCommand(broker.deps, { olderThan: 'soon' }, 'operator:test')).rejects.toThrow(/not a duration/);
  });

  it('as a process: --older-than 1d exits 1 with the reason and deletes nothing', async () => {
    const dataDir = tempDir('broker-purge-cli-');
    try {
      const res = await runCli(['calls', 'purge', '--older-than', '1d'], {
        BROKER_DATA_DIR: dataDir,
        BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
        BROKER_LOG_LEVEL: 'warn',
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('--older-than: at least 7d');
      expect(res.stderr).toContain('idempotency keys');
      expect(res.stdout).toBe('');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
