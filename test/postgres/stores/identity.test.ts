/**
 * The group-key store on both engines: first versions and rotations decided on three replicas at
 * once (one version 1 per group; every rotation its own next version, none lost to a race),
 * refusals and audit failures that write nothing, the change sequence (`group_keys_version`) the
 * key cache follows moving once per row written and never for a rolled-back change, and an audit
 * chain that verifies after. The plans are those of `KeyStore` (`identity/keys.ts`: a group's
 * first version, a rotation), written here because `KeyStore` itself reads SQLite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteGroupKeyStore, type GroupKeyChange, type GroupKeyRow, type GroupKeyStore } from '../../../src/modules/identity/store.js';
import { pgGroupKeyStore } from '../../../src/modules/identity/store.pg.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import type { Planned } from '../../../src/platform/db/seam.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const GRACE_MS = 3_600_000;

/** A group without a key gets version 1 (audited `key.created`); a group that has one is left alone. */
const firstVersion =
  (group: string) =>
  (rows: GroupKeyRow[]): Planned<GroupKeyChange, 'created' | 'kept'> =>
    rows.length > 0
      ? { result: 'kept' }
      : { write: { add: { version: 1 } }, audit: [{ actor: 'system', kind: 'key.created', subject: `group:${group}`, detail: { group, version: 1 } }], result: 'created' };

/** Version N+1, and every version still live at now + grace retires then (audited `key.rotated`). */
const rotation =
  (group: string) =>
  (rows: GroupKeyRow[], now: number): Planned<GroupKeyChange, number> => {
    if (rows.length === 0) throw new Error(`group ${group} has no key`);
    const current = Math.max(...rows.map((r) => r.version));
    const retiresAt = now + GRACE_MS;
    const versions = rows.filter((r) => r.retiresAt === null || r.retiresAt > retiresAt).map((r) => r.version);
    return { write: { retire: { versions, retiresAt }, add: { version: current + 1 } }, audit: [{ actor: 'operator:ops', kind: 'key.rotated', subject: `group:${group}`, detail: { group, version: current + 1, previous: current } }], result: current + 1 };
  };

/** The group-key store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function groupKeyStoreBehaviours(engine: Engine, makeStore: (h: Handle, clock: Clock) => GroupKeyStore): void {
  describe(`GroupKeyStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let stores: GroupKeyStore[];

    beforeAll(async () => {
      tdb = await engine.open('groupkeys');
      stores = tdb.replicas.map((h) => makeStore(h, clock));
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const counter = async () => Number((await tdb.rows<{ version: number | string }>('SELECT version FROM group_keys_version WHERE id = 1'))[0]!.version);
    const versions = async (group: string) =>
      (await tdb.rows<{ version: number; retires: number | null }>(`SELECT version, CASE WHEN retires_at IS NULL THEN NULL ELSE retires_at - ${T0} END AS retires FROM group_keys WHERE "group" = '${group}' ORDER BY version`)).map((r) => [
        Number(r.version),
        r.retires === null ? null : Number(r.retires),
      ]);
    const kinds = async (subject: string) => (await tdb.rows<{ kind: string; detail: string }>(`SELECT kind, detail FROM gov_activities WHERE subject = '${subject}' ORDER BY seq`)).map((r) => [r.kind, JSON.parse(r.detail)]);
    const expectChain = async () => expect(await tdb.verifyChain()).toMatchObject({ ok: true });

    it('version 1 given by 3 replicas starting together: one row, one key.created, one step of the change sequence', async () => {
      expect(await stores[0]!.groupsWithKeys()).toEqual(new Set());
      const before = await counter();
      const results = await Promise.all(stores.map((s) => s.change('main', firstVersion('main'))));
      expect(results.sort()).toEqual(['created', 'kept', 'kept']);
      expect(await versions('main')).toEqual([[1, null]]);
      expect(await kinds('group:main')).toEqual([['key.created', { group: 'main', version: 1 }]]);
      expect(await counter()).toBe(before + 1);
      expect(await stores[2]!.groupsWithKeys()).toEqual(new Set(['main']));
      await expectChain();
    });

    it('3 rotations of one group on 3 replicas at once: versions 2, 3 and 4, each decided on the one before', async () => {
      const before = await counter();
      const results = await Promise.all(stores.map((s) => s.change('main', rotation('main'))));
      expect(results.sort()).toEqual([2, 3, 4]);
      expect(await versions('main')).toEqual([
        [1, GRACE_MS],
        [2, GRACE_MS],
        [3, GRACE_MS],
        [4, null],
      ]);
      expect((await kinds('group:main')).slice(1).map(([, d]) => [d.previous, d.version])).toEqual([
        [1, 2],
        [2, 3],
        [3, 4],
      ]);
      // Each rotation: one version retired, one added.
      expect(await counter()).toBe(before + 6);
      await expectChain();
    });

    it('rotations of different groups on different replicas go through side by side', async () => {
      await Promise.all([stores[0]!.change('developer', firstVersion('developer')), stores[1]!.change('security', firstVersion('security'))]);
      const results = await Promise.all([stores[0]!.change('developer', rotation('developer')), stores[1]!.change('security', rotation('security')), stores[2]!.change('developer', rotation('developer'))]);
      expect(results).toEqual([expect.any(Number), 2, expect.any(Number)]);
      expect(await versions('developer')).toEqual([
        [1, GRACE_MS],
        [2, GRACE_MS],
        [3, null],
      ]);
      expect(await stores[1]!.groupsWithKeys()).toEqual(new Set(['main', 'developer', 'security']));
      await expectChain();
    });

    it('a refused plan writes nothing: a rotation of a group with no key', async () => {
      const [rows, count] = [await tdb.count('gov_activities'), await counter()];
      await expect(stores[1]!.change('nokey', rotation('nokey'))).rejects.toThrow(/has no key/);
      expect(await versions('nokey')).toEqual([]);
      expect(await tdb.count('gov_activities')).toBe(rows);
      expect(await counter()).toBe(count);
      await expectChain();
    });

    it('when the audit row cannot be written the rotation rolls back: 503 audit_unavailable, the versions and the change sequence as they were', async () => {
      const [before, count] = [await versions('main'), await counter()];
      clock.advance(1000);
      const repair = await tdb.breakAudit();
      try {
        await expect(stores[2]!.change('main', rotation('main'))).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
      } finally {
        await repair();
      }
      expect(await versions('main')).toEqual(before);
      expect(await counter()).toBe(count);
      expect(await stores[0]!.change('main', rotation('main'))).toBe(5);
      await expectChain();
    });
  });
}

for (const engine of ENGINES) {
  groupKeyStoreBehaviours(engine, engine.name === 'sqlite' ? (h, clock) => sqliteGroupKeyStore(sqliteOf(h), clock) : (h, clock) => pgGroupKeyStore(pgOf(h), clock));
}
