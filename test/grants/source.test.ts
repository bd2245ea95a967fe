import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendActivity } from '../../src/platform/audit/trail.js';
import { immediate, openDb, type Db } from '../../src/platform/db/open.js';
import type { TestBroker } from '../helpers/harness.js';
import { createAsMain, startGrantsBroker } from './helpers.js';

/** The in-memory GrantSource the decision path reads (`GrantIndex`). */
describe('GrantIndex', () => {
  let broker: TestBroker;
  let other: Db;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    other = openDb({ path: path.join(broker.dataDir, 'broker.db') });
  });
  afterAll(async () => {
    other.sqlite.close();
    await broker.stop();
  });

  it('indexes by group and provider, and serves the same array until a grant changes', async () => {
    const store = broker.deps.grants;
    expect(store.candidates('developer', 'ops')).toEqual([]);
    const g = await createAsMain(broker, { group: 'developer', level: 2, ttl_s: 600, denied_actions: ['ops.write'], resources: ['acme/*'] });
    const first = store.candidates('developer', 'ops');
    expect(first).toEqual([
      {
        id: g.id,
        group: 'developer',
        provider: 'ops',
        level: 2,
        allowedActions: null,
        deniedActions: ['ops.write'],
        resources: ['acme/*'],
        status: 'active',
        activatedAt: broker.clock.now(),
        expiresAt: broker.clock.now() + 600_000,
        approvals: 0,
      },
    ]);
    expect(store.candidates('security', 'ops')).toEqual([]);
    expect(store.candidates('developer', 'github')).toEqual([]);

    immediate(broker.deps.db, () => appendActivity(broker.deps.db, { actor: 'system', kind: 'test.unrelated', subject: 'x' }, broker.clock.now()));
    expect(store.candidates('developer', 'ops')).toBe(first);

    await createAsMain(broker, { group: 'security', level: 1 });
    expect(store.candidates('security', 'ops')).toHaveLength(1);
    expect(store.candidates('developer', 'ops')).toBe(first);

    await broker.client('main').post(`/v1/grants/${g.id}/revoke`, {});
    expect(store.candidates('developer', 'ops')).toEqual([]);
    expect(first).toHaveLength(1); // arrays handed out never change
  });

  it('sees a change committed by another connection on the very next lookup', async () => {
    const g = await createAsMain(broker, { group: 'security', level: 1, reason: 'other connection' });
    expect(broker.deps.grants.candidates('security', 'ops').map((v) => v.id)).toContain(g.id);
    other.sqlite.prepare("UPDATE grants SET status = 'revoked', revoked_at = ? WHERE id = ?").run(broker.clock.now(), g.id);
    expect(broker.deps.grants.candidates('security', 'ops').map((v) => v.id)).not.toContain(g.id);
  });

  it('a change rolled back on its own connection after a lookup inside the transaction leaves no trace', async () => {
    const g = await createAsMain(broker, { group: 'security', level: 1, reason: 'rolled back revoke' });
    const store = broker.deps.grants;
    expect(store.candidates('security', 'ops').map((v) => v.id)).toContain(g.id);
    const db = broker.deps.db.sqlite;
    expect(() =>
      db.transaction(() => {
        db.prepare("UPDATE grants SET status = 'revoked', revoked_at = ? WHERE id = ?").run(broker.clock.now(), g.id);
        expect(store.candidates('security', 'ops').map((v) => v.id)).not.toContain(g.id);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(store.candidates('security', 'ops').map((v) => v.id)).toContain(g.id);
  });

  it('a change rolled back on its own connection, then another committed elsewhere under the same log seq, gives the committed one', async () => {
    const kept = await createAsMain(broker, { group: 'security', level: 1, reason: 'kept' });
    const revoked = await createAsMain(broker, { group: 'security', level: 1, reason: 'revoked elsewhere' });
    const store = broker.deps.grants;
    const ids = () => store.candidates('security', 'ops').map((v) => v.id);
    expect(ids()).toEqual(expect.arrayContaining([kept.id, revoked.id]));
    const head = () => other.sqlite.prepare('SELECT MAX(seq) FROM grant_changes').pluck().get() as number;
    const before = head();
    const db = broker.deps.db.sqlite;
    expect(() =>
      db.transaction(() => {
        db.prepare("UPDATE grants SET status = 'revoked', revoked_at = ? WHERE id = ?").run(broker.clock.now(), kept.id);
        expect(ids()).not.toContain(kept.id);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    other.sqlite.prepare("UPDATE grants SET status = 'revoked', revoked_at = ? WHERE id = ?").run(broker.clock.now(), revoked.id);
    expect(head()).toBe(before + 1); // the rolled-back change's seq, taken again
    expect(ids()).toContain(kept.id);
    expect(ids()).not.toContain(revoked.id);
  });

  it('reloads everything when it fell behind the change log (more than 1000 changes elsewhere)', async () => {
    const g = await createAsMain(broker, { group: 'developer', level: 1, reason: 'survivor' });
    const doomed = await createAsMain(broker, { group: 'developer', level: 1, reason: 'doomed' });
    expect(broker.deps.grants.candidates('developer', 'ops').map((v) => v.id)).toEqual([g.id, doomed.id]);
    other.sqlite.transaction(() => {
      const touch = other.sqlite.prepare('UPDATE grants SET updated_at = updated_at + 1 WHERE id = ?');
      for (let i = 0; i < 1200; i++) touch.run(g.id);
      other.sqlite.prepare("UPDATE grants SET status = 'revoked' WHERE id = ?").run(doomed.id);
    })();
    expect((other.sqlite.prepare('SELECT COUNT(*) AS n FROM grant_changes').get() as { n: number }).n).toBe(1000);
    expect(broker.deps.grants.candidates('developer', 'ops').map((v) => v.id)).toEqual([g.id]);
  });
});
