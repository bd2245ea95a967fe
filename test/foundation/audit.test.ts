/** The audit trail: hash chain, append-only triggers, fail-closed rollback, redaction. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED, redact } from '../../src/platform/audit/redact.js';
import { activitiesFor, appendActivity } from '../../src/platform/audit/trail.js';
import { GENESIS_HASH, verifyChain } from '../../src/platform/audit/chain.js';
import { immediate } from '../../src/platform/db/open.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

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
