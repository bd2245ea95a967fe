/**
 * The kill-switch store on both engines, through the real switches service and its plans: set
 * with an Idempotency-Key (replay, reuse with another body, another principal's key), the active
 * read the call path makes (`activeNow`) seeing a switch set through another replica at once,
 * list pages, clear once (a second clear is 409, an unknown switch 404, nothing audited), an
 * audit failure that rolls the change back, and replicas racing on the same set and the same
 * clear with exactly one effect each, and an audit chain that verifies after.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearSwitch, setSwitch, type SetSwitchInput, type SwitchDeps } from '../../../src/modules/switches/service.js';
import { sqliteSwitchStore, type SwitchStore } from '../../../src/modules/switches/store.js';
import { pgSwitchStore } from '../../../src/modules/switches/store.pg.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import type { IdempotencyRef } from '../../../src/platform/idempotency.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const idem = (key: string, body: unknown): IdempotencyRef => ({ key, requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex') });
const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { code?: string }).code ?? String(r.reason) : 'ok');

/** The switch store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function switchStoreBehaviours(engine: Engine, makeStore: (h: Handle, clock: Clock) => SwitchStore): void {
  describe(`SwitchStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let replicas: SwitchDeps[];
    const store = (i: number) => replicas[i]!.stores.switches;

    beforeAll(async () => {
      tdb = await engine.open('switches');
      replicas = tdb.replicas.map((h) => ({ clock, stores: { switches: makeStore(h, clock) } }));
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const kinds = async (subject: string) => (await tdb.rows<{ kind: string }>(`SELECT kind FROM gov_activities WHERE subject = '${subject}' ORDER BY seq`)).map((r) => r.kind);
    const clearAll = async () => {
      for (const row of await store(0).activeNow()) await clearSwitch(replicas[0]!, row.id, 'operator:test', 'cleanup');
    };

    it('sets a switch with its audit row, seen by the active read of another replica at once; the same key and body replays it, another body is 422', async () => {
      const body: SetSwitchInput = { scope: 'group', target: 'developer', reason: 'incident 1' };
      const first = await setSwitch(replicas[0]!, body, 'operator:olga', idem('k-set', body));
      expect(first.replayed).toBe(false);
      expect(first.switch).toMatchObject({ scope: 'group', target: 'developer', reason: 'incident 1', set_by: 'operator:olga', active: true, since: new Date(T0).toISOString() });
      expect((await store(1).activeNow()).map((r) => r.id)).toEqual([first.switch.id]);
      expect(await store(2).get(first.switch.id)).toMatchObject({ id: first.switch.id, setBy: 'operator:olga', clearedAt: null });

      const again = await setSwitch(replicas[1]!, body, 'operator:olga', idem('k-set', body));
      expect(again).toEqual({ switch: first.switch, replayed: true });
      const other: SetSwitchInput = { ...body, reason: 'something else' };
      await expect(setSwitch(replicas[2]!, other, 'operator:olga', idem('k-set', other))).rejects.toMatchObject({ code: 'idempotency_key_reused', status: 422 });
      // The key is the principal's: another principal's same key sets its own switch.
      const theirs = await setSwitch(replicas[2]!, body, 'operator:alice', idem('k-set', body));
      expect(theirs.switch.id).not.toBe(first.switch.id);

      expect(await kinds(first.switch.id)).toEqual(['switch.set']);
      expect(await tdb.count('kill_switches')).toBe(2);
      await clearAll();
    });

    it('refuses a target missing or given for "all" with 422 and writes nothing', async () => {
      const before = await tdb.count('kill_switches');
      await expect(setSwitch(replicas[0]!, { scope: 'all', target: 'developer', reason: 'x' }, 'operator:olga')).rejects.toMatchObject({ code: 'validation_failed' });
      await expect(setSwitch(replicas[0]!, { scope: 'provider', reason: 'x' }, 'operator:olga')).rejects.toMatchObject({ code: 'validation_failed' });
      expect(await tdb.count('kill_switches')).toBe(before);
    });

    it('clears once, audited with its reason; a second clear is 409 and an unknown switch 404, neither audited', async () => {
      const { switch: sw } = await setSwitch(replicas[0]!, { scope: 'all', reason: 'freeze' }, 'operator:olga');
      clock.advance(1000);
      const cleared = await clearSwitch(replicas[1]!, sw.id, 'operator:alice', 'thaw');
      expect(cleared).toMatchObject({ id: sw.id, active: false, cleared_by: 'operator:alice', clear_reason: 'thaw', cleared_at: new Date(T0 + 1000).toISOString() });
      expect(await store(2).activeNow()).toEqual([]);
      await expect(clearSwitch(replicas[2]!, sw.id, 'operator:bob', 'again')).rejects.toMatchObject({ code: 'conflict', status: 409 });
      await expect(clearSwitch(replicas[2]!, 'ksw_nope', 'operator:bob', 'x')).rejects.toMatchObject({ code: 'not_found', status: 404 });
      expect(await kinds(sw.id)).toEqual(['switch.set', 'switch.cleared']);
      expect(await tdb.count("gov_activities WHERE subject = 'ksw_nope'")).toBe(0);
    });

    it('lists switches oldest first in pages, only the active ones when asked', async () => {
      const ids: string[] = [];
      for (const target of ['a', 'b', 'c']) {
        clock.advance(1);
        ids.push((await setSwitch(replicas[0]!, { scope: 'group', target, reason: target }, 'operator:olga')).switch.id);
      }
      await clearSwitch(replicas[0]!, ids[1]!, 'operator:olga', 'b done');
      const active = await store(1).list({ active: true, limit: 1 });
      expect(active).toEqual({ rows: [expect.objectContaining({ id: ids[0] })], more: true });
      const next = await store(1).list({ active: true, limit: 5, after: ids[0] });
      expect(next).toEqual({ rows: [expect.objectContaining({ id: ids[2] })], more: false });
      const all = await store(2).list({ limit: 200 });
      expect(all.rows.map((r) => r.id).slice(-3)).toEqual(ids);
      expect((await store(2).activeNow()).map((r) => r.id)).toEqual([ids[0], ids[2]]);
      await clearAll();
    });

    it('rolls the switch back when its audit row cannot be written (503 audit_unavailable)', async () => {
      const before = await tdb.count('kill_switches');
      const repair = await tdb.breakAudit();
      try {
        await expect(setSwitch(replicas[0]!, { scope: 'all', reason: 'no audit' }, 'operator:olga')).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
      } finally {
        await repair();
      }
      expect(await tdb.count('kill_switches')).toBe(before);
      expect(await store(1).activeNow()).toEqual([]);
    });

    it('three replicas setting under one key make one switch; three clearing it clear it once', async () => {
      const body: SetSwitchInput = { scope: 'provider', target: 'github', reason: 'race' };
      const sets = await Promise.all(replicas.map((r) => setSwitch(r, body, 'operator:olga', idem('k-race', body))));
      expect(new Set(sets.map((s) => s.switch.id)).size).toBe(1);
      expect(sets.filter((s) => !s.replayed)).toHaveLength(1);
      const id = sets[0]!.switch.id;
      expect(await kinds(id)).toEqual(['switch.set']);

      const clears = await Promise.allSettled(replicas.map((r, i) => clearSwitch(r, id, `operator:r${i}`, 'race over')));
      expect(clears.map(codeOf).sort()).toEqual(['conflict', 'conflict', 'ok']);
      expect(await kinds(id)).toEqual(['switch.set', 'switch.cleared']);
      expect(await tdb.verifyChain()).toMatchObject({ ok: true });
    });
  });
}

for (const engine of ENGINES) {
  switchStoreBehaviours(engine, (h, clock) => (engine.name === 'sqlite' ? sqliteSwitchStore(sqliteOf(h), clock) : pgSwitchStore(pgOf(h), clock)));
}
