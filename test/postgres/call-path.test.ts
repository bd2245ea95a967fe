/**
 * The call path (`CallService`) on PostgreSQL, as two replicas: two services, each with its own
 * pool, in-memory lanes and read model, on one database. Step 3's row and step 11's task are read
 * before the synchronous decision; the claim's cross-replica backpressure (`GroupBackpressure`) is
 * answered as step 4 answers it (429 `backpressure`, `Retry-After`, its receipt step); a key
 * running on one replica is 409 on the other, replayed once finished, 422 with another body; a
 * revocation on one replica is refused on the other at its next request, and so is a kill switch
 * set on one replica, until it is cleared on the other.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgReadModel, type ReadModel } from '../../src/app/read-model.js';
import { Catalog } from '../../src/modules/calls/catalog.js';
import { CallService } from '../../src/modules/calls/service.js';
import { PgCallStore } from '../../src/modules/calls/store.pg.js';
import { GrantIndex } from '../../src/modules/grants/source.js';
import { pgGrantRows } from '../../src/modules/grants/source.pg.js';
import { KeyStore } from '../../src/modules/identity/keys.js';
import { pgKeyRows } from '../../src/modules/identity/keys.pg.js';
import { pgGroupKeyStore } from '../../src/modules/identity/store.pg.js';
import { pgTaskStore } from '../../src/modules/kernel/store.pg.js';
import { clearSwitch, setSwitch } from '../../src/modules/switches/service.js';
import { pgSwitchStore } from '../../src/modules/switches/store.pg.js';
import { systemClock } from '../../src/platform/clock.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { createLogger } from '../../src/platform/log.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { freshDatabase } from '../helpers/postgres.js';

interface Replica {
  pg: PgDb;
  service: CallService;
  model: ReadModel;
}

describe('the call path on two PostgreSQL replicas', () => {
  let tp: TestProvider;
  let a: Replica;
  let b: Replica;
  const logger = createLogger('silent');

  const replica = async (url: string, id: string, migrate: boolean): Promise<Replica> => {
    const pg = await openPgDb({ url, migrate });
    const keys = new KeyStore(pgKeyRows(pg), Buffer.alloc(32, 7), systemClock, 0, pgGroupKeyStore(pg, systemClock));
    const grants = new GrantIndex(pgGrantRows(pg), systemClock);
    const service = new CallService({
      clock: systemClock,
      catalog: new Catalog([tp.provider]),
      grants,
      logger,
      config: { maxPendingPerGroup: 5, groupConcurrency: 10, providerTimeoutMs: 30_000 },
      instanceId: id,
      metrics: { registry: new Registry() },
      stores: { calls: new PgCallStore(pg, { maxPendingPerGroup: 5 }), tasks: pgTaskStore(pg), switches: pgSwitchStore(pg, systemClock) },
    });
    return { pg, service, model: pgReadModel(pg, keys, grants) };
  };

  beforeAll(async () => {
    tp = testProvider();
    const url = await freshDatabase('callpath');
    a = await replica(url, 'A', true);
    b = await replica(url, 'B', false);
    const now = Date.now();
    await a.pg.pool.query(
      `INSERT INTO grants (id, "group", provider, level, reason, requested_by, status, digest, created_at, updated_at, activated_at)
       VALUES ('g-dev', 'developer', 'test', 2, 'test', 'operator:test', 'active', 'd', $1, $1, $1)`,
      [now],
    );
  });
  afterAll(async () => {
    tp?.release();
    await a?.pg.close();
    await b?.pg.close();
  });

  /** One request on `r`: the read model's refresh (as the middleware runs it), then the call. */
  const submit = async (r: Replica, body: object, key: string = randomUUID()) => {
    await r.model.refresh();
    const answer = await r.service.submit({ group: 'developer', keyid: 'developer:1', requestId: key, rawBody: Buffer.from(JSON.stringify(body)), log: logger });
    return { ...answer, json: JSON.parse(answer.body) as Record<string, any> };
  };

  it('admits 5 pending calls of a group across replicas, answers the 6th 429 backpressure, and keeps keys across replicas', async () => {
    const slow = { action: 'test.read', params: { wait: true } };
    const keys = [0, 1, 2, 3, 4].map(() => randomUUID());
    const running = keys.map((k, i) => submit(i < 3 ? a : b, slow, k));
    await tp.untilWaiting(5);

    const sixth = await submit(b, slow);
    expect(sixth.status).toBe(429);
    expect(sixth.json.code).toBe('backpressure');
    expect(sixth.headers['Retry-After']).toBeDefined();
    expect(sixth.json.receipt.steps.at(-1)).toMatchObject({ step: 'backpressure', result: 'fail' });

    // A key running on A, sent to B: 409 in flight, nothing executed twice.
    const again = await submit(b, slow, keys[0]);
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('request_in_flight');

    tp.release();
    const done = await Promise.all(running);
    expect(done.map((d) => d.status)).toEqual([200, 200, 200, 200, 200]);
    expect(tp.attemptsOf(keys[0]!)).toBe(1);

    // Finished on A: B replays it; another body under the key is 422.
    const replay = await submit(b, slow, keys[0]);
    expect(replay.status).toBe(200);
    expect(replay.headers['Idempotent-Replayed']).toBe('true');
    const reused = await submit(b, { action: 'test.read', params: { resource: 'other/repo' } }, keys[0]);
    expect(reused.status).toBe(422);
    expect(reused.json.code).toBe('idempotency_key_reused');
    expect(tp.attemptsOf(keys[0]!)).toBe(1);
  });

  it('refuses on B the next request after a revocation on A', async () => {
    expect((await submit(b, { action: 'test.read' })).status).toBe(200);
    await a.pg.pool.query(`UPDATE grants SET status = 'revoked', revoked_at = $1, revoked_by = 'operator:test' WHERE id = 'g-dev'`, [Date.now()]);
    const refused = await submit(b, { action: 'test.read' });
    expect(refused.status).toBe(403);
    expect(refused.json.code).toBe('no_capability');
  });
  it('refuses on B the next call after a kill switch is set on A (503 disabled_by_operator, nothing executed), and lets calls through again once B clears it', async () => {
    const body = { action: 'test.read' };
    await a.pg.pool.query(`UPDATE grants SET status = 'active', revoked_at = NULL, revoked_by = NULL WHERE id = 'g-dev'`);
    const before = await submit(b, body);
    expect(before.status).toBe(200);
    expect(before.json.receipt.steps).toContainEqual(expect.objectContaining({ step: 'switch', result: 'pass' }));

    const switchesOf = (r: Replica) => ({ clock: systemClock, stores: { switches: pgSwitchStore(r.pg, systemClock) } });
    const { switch: set } = await setSwitch(switchesOf(a), { scope: 'group', target: 'developer', reason: 'incident 7' }, 'operator:test');
    const key = randomUUID();
    const refused = await submit(b, body, key);
    expect([refused.status, refused.json.code]).toEqual([503, 'disabled_by_operator']);
    expect(refused.json.receipt.steps.at(-1)).toMatchObject({ step: 'switch', result: 'fail' });
    expect(refused.json.receipt.steps.at(-1).note).toContain(set.id);
    expect((await a.pg.pool.query("SELECT 1 FROM ext_calls WHERE request_id = $1", [key])).rowCount).toBe(0);
    expect(tp.attemptsOf(key)).toBe(0);

    await clearSwitch(switchesOf(b), set.id, 'operator:test', 'incident over');
    const after = await submit(a, body);
    expect(after.status).toBe(200);
    expect(after.json.receipt.steps).toContainEqual(expect.objectContaining({ step: 'switch', result: 'pass', note: 'no switch' }));
  });
});
