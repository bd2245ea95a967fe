/**
 * The decision path's read model on PostgreSQL: the group keys (`KeyStore`) and the grant index
 * (`GrantIndex`) held in memory by one replica, refreshed once per request by `pgReadModel`
 * (one query for both change sequences, then what moved). A rotation, a revocation, a new grant
 * made on another replica is seen by the first refresh after its commit, and a refresh that cannot
 * read the database fails closed (503) instead of leaving the request to stale memory.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgReadModel } from '../../src/app/read-model.js';
import { GrantIndex } from '../../src/modules/grants/source.js';
import { pgGrantRows } from '../../src/modules/grants/source.pg.js';
import { KeyStore } from '../../src/modules/identity/keys.js';
import { pgKeyRows } from '../../src/modules/identity/keys.pg.js';
import { pgGroupKeyStore } from '../../src/modules/identity/store.pg.js';
import { ManualClock } from '../../src/platform/clock.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { freshDatabase } from '../helpers/postgres.js';

const T0 = Date.UTC(2026, 4, 1, 12);

describe('the read model on PostgreSQL', () => {
  const clock = new ManualClock(T0);
  const master = randomBytes(32);
  let url: string;
  let here: PgDb;
  let elsewhere: PgDb;
  let keys: KeyStore;
  let grants: GrantIndex;

  beforeAll(async () => {
    url = await freshDatabase('readmodel');
    here = await openPgDb({ url });
    elsewhere = await openPgDb({ url, migrate: false });
    keys = new KeyStore(pgKeyRows(here), master, clock, 0, pgGroupKeyStore(here, clock));
    await keys.ensureGroups(['developer']);
    grants = new GrantIndex(pgGrantRows(here), clock);
  });
  afterAll(async () => {
    await here?.close();
    await elsewhere?.close();
  });

  const insertGrant = (id: string, status = 'active') =>
    elsewhere.pool.query(
      `INSERT INTO grants (id, "group", provider, level, reason, requested_by, status, digest, created_at, updated_at, activated_at)
       VALUES ($1, 'developer', 'github', 1, 'test', 'operator:test', $2, 'd', $3, $3, $3)`,
      [id, status, T0],
    );

  it('refuses a lookup before the first refresh', () => {
    expect(() => keys.lookup('developer:1')).toThrow(/applyHead/);
    expect(() => grants.candidates('developer', 'github')).toThrow(/applyHead/);
  });

  it('sees a grant made, then revoked, on another replica at the next refresh', async () => {
    const model = pgReadModel(here, keys, grants);
    await model.refresh();
    expect(keys.lookup('developer:1')?.version).toBe(1);
    expect(grants.candidates('developer', 'github')).toEqual([]);

    await insertGrant('g1');
    expect(grants.candidates('developer', 'github')).toEqual([]); // memory until the next refresh
    await model.refresh();
    expect(grants.candidates('developer', 'github').map((g) => g.id)).toEqual(['g1']);

    await elsewhere.pool.query(`UPDATE grants SET status = 'revoked', revoked_at = $1, revoked_by = 'operator:b', revoke_reason = 'gone' WHERE id = 'g1'`, [T0 + 1]);
    await model.refresh();
    expect(grants.candidates('developer', 'github')).toEqual([]);
    expect(grants.lastRevoked('developer', 'github')).toEqual({ id: 'g1', revokedAt: T0 + 1, revokedBy: 'operator:b', reason: 'gone' });
  });

  it('sees a key rotation made on another replica at the next refresh', async () => {
    const model = pgReadModel(here, keys, grants);
    await new KeyStore(pgKeyRows(elsewhere), master, clock, 0, pgGroupKeyStore(elsewhere, clock)).rotate('developer', 'operator:test');
    expect(keys.lookup('developer:2')).toBeNull();
    await model.refresh();
    expect(keys.lookup('developer:2')?.version).toBe(2);
    expect(keys.current('developer').version).toBe(2);
    expect(keys.lookup('developer:1')).toBeNull(); // retired with no grace
  });

  it('reloads every grant when a fresh index starts, and from the change log after', async () => {
    await insertGrant('g2');
    await insertGrant('g3', 'pending_approval');
    const fresh = new GrantIndex(pgGrantRows(here), clock);
    await pgReadModel(here, keys, fresh).refresh();
    expect(fresh.candidates('developer', 'github').map((g) => g.id).sort()).toEqual(['g2', 'g3']);
    expect(fresh.lastRevoked('developer', 'github')?.id).toBe('g1');
  });

  it('fails closed with 503 when the database cannot be read, and recovers when it can', async () => {
    const gone = await openPgDb({ url, migrate: false });
    const model = pgReadModel(gone, keys, grants);
    await model.refresh();
    await gone.close();
    const err = await model.refresh()!.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).headers['Retry-After']).toBe('1');
    await expect(pgReadModel(here, keys, grants).refresh()).resolves.toBeUndefined();
  });
});
