/**
 * The audit trail on PostgreSQL: many writers on several replicas (pools) append to one chain
 * with no gap and no fork, and the rows are byte for byte those the SQLite trail stores, so
 * `audit verify` (ChainChecker) works unchanged.
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainChecker, type StoredActivity } from '../../src/platform/audit/chain.js';
import { appendActivities, type ActivityInput } from '../../src/platform/audit/trail.js';
import { appendActivitiesPg, appendActivityPg, storedActivitiesPg, verifyChainPg } from '../../src/platform/audit/trail.pg.js';
import { immediate, openDb } from '../../src/platform/db/open.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { brokerMeta } from '../../src/schema.pg.js';
import { tempDir } from '../helpers/harness.js';
import { freshDatabase } from '../helpers/postgres.js';

const opened: PgDb[] = [];
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
});
async function open(url: string): Promise<PgDb> {
  const db = await openPgDb({ url, poolMax: 10 });
  opened.push(db);
  return db;
}
async function stored(db: PgDb, opts: Parameters<typeof storedActivitiesPg>[1] = {}): Promise<StoredActivity[]> {
  const rows: StoredActivity[] = [];
  for await (const r of storedActivitiesPg(db, opts)) rows.push(r);
  return rows;
}

/** Details with what canonicalisation and redaction must get right: key order, unicode, numbers, nesting, a credential. */
const INPUTS: ActivityInput[] = [
  { actor: 'main', kind: 'grant.created', subject: 'grt_01', detail: { z: 1, a: [3, 2, 1], 'é': 'ünïcødé ✓', n: 1e21, f: 0.1 } },
  { actor: 'operator:alice', kind: 'token.revoked', subject: 'rvk_01', detail: { authorization: 'Bearer abc.def.ghi', nested: { b: null, a: true } } },
  { actor: 'system', kind: 'call.recovered', subject: 'call:main:r1' },
  { actor: 'developer', kind: 'task.transition', subject: '01HZX', detail: { from: 'DOING', to: 'REVIEW', emoji: '🦀', quote: 'say "hi"\n' } },
];

describe('appendActivitiesPg', () => {
  it('3 replicas x 50 concurrent appends: one chain, no gap, no fork; ChainChecker verifies it', async () => {
    const url = await freshDatabase('audit_concurrent');
    const replicas = await Promise.all([open(url), open(url), open(url)]);
    const nowMs = Date.parse('2026-01-02T03:04:05.678Z');
    const appends = replicas.flatMap((db, r) =>
      Array.from({ length: 50 }, (_, i) => {
        // 1 to 3 rows per append, as a state change with its audit rows.
        const rows = Array.from({ length: 1 + (i % 3) }, (_, k) => ({ actor: `replica${r}`, kind: 'test.append', subject: `r${r}:a${i}:k${k}`, detail: { r, i, k } }));
        return db.orm.transaction((tx) => appendActivitiesPg(tx, rows, nowMs + i));
      }),
    );
    const results = await Promise.all(appends);
    const expected = results.reduce((n, rows) => n + rows.length, 0);
    expect(expected).toBe(3 * (17 * 1 + 17 * 2 + 16 * 3));

    const rows = await stored(replicas[0]!);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
    // Each append got a contiguous run of seqs, and what it returned is what is stored.
    const bySeq = new Map(rows.map((r) => [r.seq, r]));
    for (const appended of results) {
      for (let k = 1; k < appended.length; k += 1) expect(appended[k]!.seq).toBe(appended[k - 1]!.seq + 1);
      for (const a of appended) expect(bySeq.get(a.seq)).toMatchObject({ hash: a.hash, prevHash: a.prevHash, subject: a.subject });
    }
    const checker = new ChainChecker();
    for (const r of rows) expect(checker.push(r)).toBeNull();
    expect(checker.finish()).toBeNull();
    expect(await verifyChainPg(replicas[1]!)).toEqual({ ok: true, rows: expected });
  });

  it('stores exactly the rows (canonical detail text, ts, hashes) the SQLite trail stores for the same appends', async () => {
    const pgDb = await open(await freshDatabase('audit_same_bytes'));
    const sqlite = openDb({ path: path.join(tempDir(), 'broker.db') });
    const nowMs = Date.parse('2026-03-04T05:06:07.089Z');
    try {
      for (const [i, input] of INPUTS.entries()) {
        const batch = i === 3 ? [input, { ...input, subject: 'second' }] : [input];
        const fromSqlite = immediate(sqlite, () => appendActivities(sqlite, batch, nowMs + i));
        const fromPg = await pgDb.orm.transaction((tx) => appendActivitiesPg(tx, batch, nowMs + i));
        expect(fromPg).toEqual(fromSqlite);
      }
      const sqliteRows = sqlite.sqlite
        .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities ORDER BY seq')
        .all() as StoredActivity[];
      expect(await stored(pgDb)).toEqual(sqliteRows);
      expect(sqliteRows[1]!.detail).not.toContain('abc.def.ghi');
    } finally {
      sqlite.sqlite.close();
    }
  });

  it('a rolled-back append leaves no row and no gap: the next append takes its seq', async () => {
    const db = await open(await freshDatabase('audit_rollback'));
    await db.orm.transaction((tx) => appendActivityPg(tx, INPUTS[0]!, 1000));
    const boom = new Error('the state change failed after its audit row');
    await expect(
      db.orm.transaction(async (tx) => {
        await appendActivitiesPg(tx, [INPUTS[1]!, INPUTS[2]!], 2000);
        throw boom;
      }),
    ).rejects.toBe(boom);
    const next = await db.orm.transaction((tx) => appendActivityPg(tx, INPUTS[3]!, 3000));
    expect(next.seq).toBe(2);
    expect(await verifyChainPg(db)).toEqual({ ok: true, rows: 2 });
  });

  it('fails closed: a write that cannot be stored is audit_unavailable (503) and the transaction rolls back', async () => {
    const db = await open(await freshDatabase('audit_unavailable'));
    const err = await db.orm
      .transaction(async (tx) => {
        await tx.insert(brokerMeta).values({ key: 'change', value: 'v' });
        await tx.execute(sql`SET LOCAL transaction_read_only = on`);
        return appendActivitiesPg(tx, [INPUTS[0]!], 1000);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'audit_unavailable', status: 503 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM broker_meta WHERE key = $1', ['change'])).rows[0]).toEqual({ n: 0 });
    expect(await verifyChainPg(db)).toEqual({ ok: true, rows: 0 });
  });

  it('refuses to run outside a transaction, or in one whose snapshot could predate the lock', async () => {
    const db = await open(await freshDatabase('audit_misuse'));
    await expect(appendActivitiesPg(db.orm as never, [INPUTS[0]!], 1000)).rejects.toThrow(/inside the transaction/);
    await expect(db.orm.transaction((tx) => appendActivitiesPg(tx, [INPUTS[0]!], 1000), { isolationLevel: 'repeatable read' })).rejects.toThrow(
      /READ COMMITTED/,
    );
    expect(await verifyChainPg(db)).toEqual({ ok: true, rows: 0 });
  });
});

describe('verifyChainPg', () => {
  let db: PgDb;
  beforeAll(async () => {
    db = await open(await freshDatabase('audit_verify'));
    for (let i = 0; i < 3; i += 1) await db.orm.transaction((tx) => appendActivitiesPg(tx, INPUTS, 5000 + i));
  });

  it('reads every row across pages, from any seq', async () => {
    const all = await stored(db);
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(await stored(db, { pageRows: 5 })).toEqual(all);
    expect(await stored(db, { pageRows: 4, afterSeq: 3 })).toEqual(all.slice(3));
  });

  it('checks an anchor like verifyChain', async () => {
    const rows = await stored(db);
    const anchor = { seq: 7, hash: rows[6]!.hash };
    expect(await verifyChainPg(db, new ChainChecker(anchor))).toEqual({ ok: true, rows: 12 });
    const wrong = await verifyChainPg(db, new ChainChecker({ seq: 7, hash: rows[5]!.hash }));
    expect(wrong).toMatchObject({ ok: false, brokenSeq: 7 });
  });
});
