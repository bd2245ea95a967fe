/**
 * The store seam's SQLite mechanics (`platform/db/seam.ts`) and the audited refusal
 * (`platform/audit/refusal.ts`), on a real database file: a planned write and its audit rows
 * commit together or not at all, a plan refuses by throwing, failures are rejections, and a
 * refusal is recorded in a transaction of its own before it is answered.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { withAuditedRefusals } from '../../src/platform/audit/refusal.js';
import { ManualClock } from '../../src/platform/clock.js';
import { openDb, type Db } from '../../src/platform/db/open.js';
import { appendAlone, runPlan, settled } from '../../src/platform/db/seam.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { tempDir } from '../helpers/harness.js';

const T0 = Date.UTC(2026, 0, 1);
let db: Db;
const clock = new ManualClock(T0);

beforeAll(() => {
  db = openDb({ path: path.join(tempDir(), 'broker.db') });
});
afterAll(() => db.sqlite.close());

const meta = (key: string) => (db.sqlite.prepare('SELECT value FROM broker_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
const auditRows = (subject: string) => db.sqlite.prepare('SELECT kind, ts FROM gov_activities WHERE subject = ? ORDER BY seq').all(subject) as { kind: string; ts: string }[];
const readMeta = (key: string) => () => meta(key) ?? null;
const writeMeta = (key: string) => (value: string) => void db.sqlite.prepare('INSERT INTO broker_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);

describe('runPlan', () => {
  it('hands the plan what the store read and the clock, then commits its write and audit rows together', async () => {
    let seen: unknown;
    const result = await runPlan(db, clock, readMeta('a'), (current, now) => {
      seen = { current, now };
      return { write: 'one', audit: [{ actor: 'test', kind: 'meta.set', subject: 'meta:a' }], result: 'done' };
    }, writeMeta('a'));
    expect(result).toBe('done');
    expect(seen).toEqual({ current: null, now: T0 });
    expect(meta('a')).toBe('one');
    expect(auditRows('meta:a')).toEqual([{ kind: 'meta.set', ts: new Date(T0).toISOString() }]);
  });

  it('writes nothing when the plan returns no write, and rolls back when the plan refuses', async () => {
    await expect(runPlan(db, clock, readMeta('a'), () => ({ result: 'replay' }), writeMeta('a'))).resolves.toBe('replay');
    const refused = runPlan(db, clock, readMeta('a'), (current) => {
      expect(current).toBe('one');
      throw new ApiError('conflict', 'no');
    }, writeMeta('a'));
    await expect(refused).rejects.toMatchObject({ code: 'conflict' });
    expect(meta('a')).toBe('one');
    expect(auditRows('meta:a')).toHaveLength(1);
  });

  it('rolls the write back and rejects with 503 audit_unavailable when its audit rows cannot be appended', async () => {
    db.sqlite.exec("CREATE TRIGGER audit_refuses BEFORE INSERT ON gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    let pending: Promise<string> | undefined;
    try {
      // A failure is a rejection, never a synchronous throw: the asynchronous contract of every store.
      expect(() => {
        pending = runPlan(db, clock, readMeta('b'), () => ({ write: 'two', audit: [{ actor: 'test', kind: 'meta.set', subject: 'meta:b' }], result: 'x' }), writeMeta('b'));
      }).not.toThrow();
      await expect(pending).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
    } finally {
      db.sqlite.exec('DROP TRIGGER audit_refuses');
    }
    expect(meta('b')).toBeUndefined();
    expect(verifyChain(db).ok).toBe(true);
  });

  it('settled turns a throw into a rejection', async () => {
    await expect(settled(() => 1)).resolves.toBe(1);
    await expect(settled(() => { throw new Error('boom'); })).rejects.toThrow('boom');
  });
});

describe('withAuditedRefusals', () => {
  const audited = new Set(['forbidden'] as const);
  const record = (subject: string) => (refusal: ApiError) => appendAlone(db, clock, [{ actor: 'test', kind: 'thing.refused', subject, detail: { code: refusal.code } }]);

  it('records an audited refusal in its own transaction, after the attempt rolled back, then answers it', async () => {
    const attempt = () => runPlan(db, clock, readMeta('c'), () => {
      throw new ApiError('forbidden', 'not you');
    }, writeMeta('c'));
    await expect(withAuditedRefusals(audited, attempt, record('thing:c'))).rejects.toMatchObject({ code: 'forbidden' });
    expect(meta('c')).toBeUndefined();
    expect(auditRows('thing:c')).toEqual([{ kind: 'thing.refused', ts: new Date(T0).toISOString() }]);
  });

  it('records nothing for other errors, and passes a success through', async () => {
    await expect(withAuditedRefusals(audited, () => Promise.reject(new ApiError('not_found', 'none')), record('thing:d'))).rejects.toMatchObject({ code: 'not_found' });
    await expect(withAuditedRefusals(audited, () => Promise.resolve(7), record('thing:d'))).resolves.toBe(7);
    expect(auditRows('thing:d')).toEqual([]);
  });

  it('answers the audit failure instead when the refusal cannot be recorded', async () => {
    db.sqlite.exec("CREATE TRIGGER audit_refuses BEFORE INSERT ON gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    try {
      const refused = withAuditedRefusals(audited, () => Promise.reject(new ApiError('forbidden', 'not you')), record('thing:e'));
      await expect(refused).rejects.toMatchObject({ code: 'audit_unavailable' });
    } finally {
      db.sqlite.exec('DROP TRIGGER audit_refuses');
    }
  });
});
