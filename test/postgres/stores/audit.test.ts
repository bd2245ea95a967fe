/**
 * The audit store (`GET /v1/audit`) on both engines: the same filters (subject, actor, exact kind,
 * kind prefix `grant.*`), order and pages; a reader following the trail with `since` while three
 * replicas append sees every row once, in order, with no gap; and, on the same rows written to
 * both engines, PostgreSQL answers every filter exactly as SQLite does (parsed detail, hashes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteAuditStore, type AuditFilter, type AuditStore } from '../../../src/modules/audit/store.js';
import { pgAuditStore } from '../../../src/modules/audit/store.pg.js';
import type { ActivityInput } from '../../../src/platform/audit/trail.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import { appendAlone, appendAlonePg } from '../../../src/platform/db/seam.js';
import { ENGINES, pgOf, postgresEngine, sqliteEngine, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);

/** Kinds that a prefix must tell apart byte by byte: `grant.*` is the first three only. */
const ROWS: ActivityInput[] = [
  { actor: 'main', kind: 'grant.created', subject: 'grt_A', detail: { level: 2, z: 'last', a: 'first' } },
  { actor: 'operator:alice', kind: 'grant.revoked', subject: 'grt_A', detail: { reason: 'done' } },
  { actor: 'operator:alice', kind: 'grant.é', subject: 'grt_B', detail: { text: 'ünïcødé ✓' } },
  { actor: 'operator:alice', kind: 'grants.revoked_all', subject: 'group:developer', detail: { grants: ['grt_A'] } },
  { actor: 'main', kind: 'grant_x.y', subject: 'grt_B' },
  { actor: 'main', kind: 'Grant.Upper', subject: 'grt_B' },
  { actor: 'main', kind: 'grant', subject: 'grt_B' },
  { actor: 'developer', kind: 'task.transition', subject: '01TASK', detail: { from: 'DOING', to: 'REVIEW' } },
];

const FILTERS: AuditFilter[] = [
  { since: 0, limit: 100 },
  { kind: 'grant.*', since: 0, limit: 100 },
  { kind: 'grant.created', since: 0, limit: 100 },
  { kind: 'grant', since: 0, limit: 100 },
  { subject: 'grt_B', since: 0, limit: 100 },
  { subject: 'grt_A', kind: 'grant.*', actor: 'operator:alice', since: 0, limit: 100 },
  { actor: 'main', since: 2, limit: 2 },
  { since: 3, limit: 3 },
  { since: 8, limit: 10 },
];

const appendWith = (h: Handle, clock: Clock, rows: readonly ActivityInput[]) => (h.engine === 'sqlite' ? appendAlone(h.db, clock, rows) : appendAlonePg(h.db, clock, rows));

/** The audit store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function auditStoreBehaviours(engine: Engine, makeStore: (h: Handle) => AuditStore): void {
  describe(`AuditStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let stores: AuditStore[];

    beforeAll(async () => {
      tdb = await engine.open('audit');
      stores = tdb.replicas.map(makeStore);
      for (const row of ROWS) await appendWith(tdb.replicas[0], clock, [row]);
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const kindsOf = async (f: AuditFilter) => {
      const page = await stores[1]!.list(f);
      return { kinds: page.items.map((i) => i.kind), seqs: page.items.map((i) => i.seq), nextSince: page.nextSince };
    };

    it('filters by subject, actor, exact kind and kind prefix, in seq order, with the detail parsed', async () => {
      expect(await kindsOf({ kind: 'grant.*', since: 0, limit: 100 })).toEqual({ kinds: ['grant.created', 'grant.revoked', 'grant.é'], seqs: [1, 2, 3], nextSince: null });
      expect((await kindsOf({ kind: 'grant', since: 0, limit: 100 })).kinds).toEqual(['grant']);
      expect((await kindsOf({ subject: 'grt_B', actor: 'main', since: 0, limit: 100 })).kinds).toEqual(['grant_x.y', 'Grant.Upper', 'grant']);
      const [first] = (await stores[2]!.list({ since: 0, limit: 1 })).items;
      expect(first).toMatchObject({ seq: 1, ts: new Date(T0).toISOString(), actor: 'main', subject: 'grt_A', detail: { level: 2, z: 'last', a: 'first' } });
      expect(first!.prevHash).toBe('0'.repeat(64));
    });

    it('pages with since and limit: nextSince is the last seq while more rows follow', async () => {
      expect(await kindsOf({ since: 3, limit: 3 })).toEqual({ kinds: ['grants.revoked_all', 'grant_x.y', 'Grant.Upper'], seqs: [4, 5, 6], nextSince: 6 });
      expect(await kindsOf({ since: 6, limit: 3 })).toEqual({ kinds: ['grant', 'task.transition'], seqs: [7, 8], nextSince: null });
      expect(await kindsOf({ since: 8, limit: 3 })).toEqual({ kinds: [], seqs: [], nextSince: null });
    });

    it('a reader following with since while 3 replicas append sees every row once, in order, with no gap', async () => {
      const writers = tdb.replicas.map(async (h, r) => {
        for (let i = 0; i < 20; i += 1) await appendWith(h, clock, [{ actor: `replica${r}`, kind: 'test.append', subject: `r${r}`, detail: { i } }, { actor: `replica${r}`, kind: 'test.append', subject: `r${r}`, detail: { i, second: true } }]);
      });
      let done = false;
      const all = Promise.all(writers).then(() => {
        done = true;
      });
      const seen: number[] = [];
      let since = 8;
      for (;;) {
        const finished = done;
        const page = await stores[0]!.list({ kind: 'test.*', since, limit: 7 });
        seen.push(...page.items.map((i) => i.seq));
        since = page.items.at(-1)?.seq ?? since;
        if (finished && page.nextSince === null) break;
      }
      await all;
      expect(seen).toEqual(Array.from({ length: 120 }, (_, i) => 9 + i));
      expect(await tdb.verifyChain()).toEqual({ ok: true, rows: 128 });
    });
  });
}

for (const engine of ENGINES) {
  auditStoreBehaviours(engine, engine.name === 'sqlite' ? (h) => sqliteAuditStore(sqliteOf(h)) : (h) => pgAuditStore(pgOf(h)));
}

describe('the same trail on both engines', () => {
  let sqlite: TestDatabase;
  let postgres: TestDatabase;
  beforeAll(async () => {
    [sqlite, postgres] = await Promise.all([sqliteEngine.open('audit'), postgresEngine.open('audit_same')]);
    const clock = new ManualClock(T0);
    for (const [i, row] of ROWS.entries()) {
      clock.set(T0 + i * 1001);
      await appendWith(sqlite.replicas[0], clock, [row]);
      await appendWith(postgres.replicas[0], clock, [row]);
    }
  });
  afterAll(async () => {
    await Promise.all([sqlite?.close(), postgres?.close()]);
  });

  it('PostgreSQL answers every filter exactly as SQLite does: rows, parsed details, hashes, pages', async () => {
    const lite = sqliteAuditStore(sqliteOf(sqlite.replicas[1]));
    const pg = pgAuditStore(pgOf(postgres.replicas[1]));
    for (const f of FILTERS) expect(await pg.list(f), JSON.stringify(f)).toEqual(await lite.list(f));
    expect((await pg.list({ since: 0, limit: 100 })).items).toHaveLength(ROWS.length);
  });
});
