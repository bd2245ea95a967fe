/** The audit trail: hash chain, append-only triggers, fail-closed rollback, redaction. */
import path from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED, redact } from '../../src/platform/audit/redact.js';
import { activitiesFor, appendActivities, appendActivity } from '../../src/platform/audit/trail.js';
import { ChainChecker, GENESIS_HASH, verifyChain, type ChainPoint, type SignedPoint } from '../../src/platform/audit/chain.js';
import { verifyChainParallel } from '../../src/platform/audit/verify-parallel.js';
import { immediate, openDb, type Db } from '../../src/platform/db/open.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';

let broker: TestBroker;
beforeAll(async () => {
  broker = await startBroker({ listen: false });
});
afterAll(() => broker.stop());

describe('hash chain', () => {
  it('links each row to the previous one from the genesis hash', () => {
    const rows = broker.deps.db.sqlite.prepare('SELECT seq, prev_hash, hash FROM gov_activities ORDER BY seq').all() as { seq: number; prev_hash: string; hash: string }[];
    expect(rows[0]).toMatchObject({ seq: 1, prev_hash: GENESIS_HASH });
    rows.slice(1).forEach((r, i) => expect(r.prev_hash).toBe(rows[i]!.hash));
    expect(verifyChain(broker.deps.db)).toEqual({ ok: true, rows: rows.length });
  });

  it('records group key creation at first start, one row per group', () => {
    expect(activitiesFor(broker.deps.db, 'group:developer').map((a) => a.kind)).toEqual(['key.created']);
  });

  it('is refused UPDATE and DELETE by SQLite itself', () => {
    expect(() => broker.deps.db.sqlite.prepare("UPDATE gov_activities SET kind = 'x'").run()).toThrow(/append-only/);
    expect(() => broker.deps.db.sqlite.prepare('DELETE FROM gov_activities').run()).toThrow(/append-only/);
  });
});

describe('fail-closed', () => {
  it('rolls the state change back and answers audit_unavailable when the audit write fails', async () => {
    const db = broker.deps.db;
    db.sqlite.exec("CREATE TRIGGER audit_refuses BEFORE INSERT ON gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    try {
      let thrown: unknown;
      try {
        await broker.deps.keys.rotate('developer', 'operator:test');
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ApiError);
      expect((thrown as ApiError).code).toBe('audit_unavailable');
      expect((thrown as ApiError).status).toBe(503);
      expect(broker.deps.keys.current('developer').version).toBe(1);
    } finally {
      db.sqlite.exec('DROP TRIGGER audit_refuses');
    }
    expect(verifyChain(db).ok).toBe(true);
  });

  it('commits the change and its row together', async () => {
    await broker.deps.keys.rotate('developer', 'operator:test');
    const rows = activitiesFor(broker.deps.db, 'group:developer');
    expect(rows.at(-1)).toMatchObject({ kind: 'key.rotated', actor: 'operator:test', detail: { version: 2, previous: 1 } });
  });

  it('keeps a rolled-back transaction out of the chain', () => {
    const db = broker.deps.db;
    const before = verifyChain(db);
    expect(() =>
      immediate(db, () => {
        appendActivity(db, { actor: 'system', kind: 'test.rollback', subject: 'x' }, broker.clock.now());
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(verifyChain(db)).toEqual(before);
  });

  it('refuses an append outside a transaction, writing nothing', () => {
    const db = broker.deps.db;
    const before = verifyChain(db);
    expect(() => appendActivity(db, { actor: 'system', kind: 'test.loose', subject: 'x' }, broker.clock.now())).toThrow(/must run inside the transaction/);
    expect(verifyChain(db)).toEqual(before);
  });
});

describe('redaction', () => {
  it('removes credential shapes and credential-named fields before a row is hashed and stored', () => {
    const token = `ghp_${'a1B2'.repeat(9)}`;
    const row = immediate(broker.deps.db, () =>
      appendActivity(
        broker.deps.db,
        { actor: 'system', kind: 'test.redact', subject: 'redact', detail: { note: `token is ${token}`, authorization: 'Bearer abc.def.ghi', nested: [{ password: 'hunter2hunter2' }] } },
        broker.clock.now(),
      ),
    );
    expect(row.detail).toEqual({ note: `token is ${REDACTED}`, authorization: REDACTED, nested: [{ password: REDACTED }] });
    expect(JSON.stringify(activitiesFor(broker.deps.db, 'redact'))).not.toContain(token);
    expect(verifyChain(broker.deps.db).ok).toBe(true);
  });

  it('recognises common credential formats', () => {
    const samples = [
      'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
      'ghs_16C7e42F292c6912E7710c838347Ae178B4a',
      'ya29.a0AfH6SMBx-example-google-oauth-token',
      'AIzaSyA-1234567890abcdefghijklmnopqrstu',
      'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJlLWJ5dGVz',
      '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----',
    ];
    for (const s of samples) expect(redact(`x ${s} y`)).toBe(`x ${REDACTED} y`);
  });
});

describe('verify over worker threads (verifyChainParallel)', () => {
  /** A trail of 30 rows in a file of its own, written by the real trail; `tamper` edits a copy with the triggers dropped. */
  function trail(tamper?: (db: Database.Database) => void): Db {
    const dir = tempDir();
    const db = openDb({ path: path.join(dir, 'broker.db') });
    immediate(db, () =>
      appendActivities(
        db,
        Array.from({ length: 30 }, (_, i) => ({ actor: 'system', kind: `test.row${i % 3}`, subject: `s${i}`, detail: { i, note: 'x'.repeat(i), nested: { b: 1, a: [i] } } })),
        Date.UTC(2026, 0, 1),
      ),
    );
    if (tamper) {
      db.sqlite.exec('DROP TRIGGER gov_activities_no_update; DROP TRIGGER gov_activities_no_delete');
      tamper(db.sqlite);
    }
    return db;
  }
  const set = (seq: number, column: string, value: string) => (db: Database.Database) => db.prepare(`UPDATE gov_activities SET ${column} = ? WHERE seq = ?`).run(value, seq);
  const detailOf = (db: Database.Database, seq: number) => (db.prepare('SELECT detail FROM gov_activities WHERE seq = ?').get(seq) as { detail: string }).detail;
  const hashOf = (db: Database.Database, seq: number) => (db.prepare('SELECT hash FROM gov_activities WHERE seq = ?').get(seq) as { hash: string }).hash;

  /** Both verdicts and both checkers' start and head, runs of 4 rows over 2 workers. */
  async function both(db: Db, anchor?: ChainPoint, checkpoints: SignedPoint[] = []) {
    const seq = new ChainChecker(anchor, checkpoints);
    const par = new ChainChecker(anchor, checkpoints);
    const sequential = verifyChain(db, seq);
    const parallel = await verifyChainParallel(db, par, { workers: 2, chunkRows: 4, minRows: 0 });
    return { sequential: { sequential, start: seq.start, head: seq.head }, parallel: { sequential: parallel, start: par.start, head: par.head } };
  }

  it.each<[string, ((db: Database.Database) => void) | undefined]>([
    ['an untouched trail', undefined],
    ['a hash changed in the middle of a run (seq 10)', set(10, 'hash', 'f'.repeat(64))],
    ['a non-canonical detail on the first row of a run (seq 9)', (db) => set(9, 'detail', ` ${detailOf(db, 9)}`)(db)],
    ['a prev_hash changed on the first row of a run (seq 13)', set(13, 'prev_hash', '0'.repeat(64))],
    ['both the prev_hash and the detail of the first row of a run (seq 5): the prev_hash is named', (db) => {
      set(5, 'detail', ` ${detailOf(db, 5)}`)(db);
      set(5, 'prev_hash', 'a'.repeat(64))(db);
    }],
    ['the last row (seq 30) rewritten', set(30, 'actor', 'intruder')],
    ['a row removed (seq 17)', (db) => db.prepare('DELETE FROM gov_activities WHERE seq = 17').run()],
    ['the first row removed', (db) => db.prepare('DELETE FROM gov_activities WHERE seq = 1').run()],
  ])('gives the sequential verdict, start and head on %s', async (_name, tamper) => {
    const db = trail(tamper);
    const { sequential, parallel } = await both(db);
    expect(parallel).toEqual(sequential);
    if (tamper) expect(sequential.sequential.ok).toBe(false);
    db.sqlite.close();
  });

  it('checks an anchor and checkpoints as the sequential check does', async () => {
    const db = trail();
    const at = (seq: number) => ({ seq, hash: hashOf(db.sqlite, seq) });
    const cases: [ChainPoint | undefined, SignedPoint[]][] = [
      [at(14), []],
      [{ seq: 14, hash: 'b'.repeat(64) }, []],
      [{ seq: 31, hash: 'b'.repeat(64) }, []],
      [undefined, [{ ...at(8), ts: '2026-01-01T00:00:00.000Z' }, { ...at(21), ts: '2026-01-02T00:00:00.000Z' }]],
      [undefined, [{ seq: 22, hash: 'c'.repeat(64), ts: '2026-01-02T00:00:00.000Z' }]],
      [undefined, [{ seq: 40, hash: 'c'.repeat(64), ts: '2026-01-03T00:00:00.000Z' }]],
    ];
    for (const [anchor, checkpoints] of cases) {
      const { sequential, parallel } = await both(db, anchor, checkpoints);
      expect(parallel).toEqual(sequential);
    }
    db.sqlite.close();
  });
});
