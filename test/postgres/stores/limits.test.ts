/**
 * The limits' store on both engines (three replicas: three connections to one SQLite file, three
 * pools on one PostgreSQL database, as three broker processes would hold): a hard quota taken
 * from concurrently by all three admits exactly its limit, refusals write nothing, the soft quota
 * is audited once per day and rule, a token bucket refills with time, a refund gives back one
 * call, and a new UTC day starts from zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayStart, DAY_MS, type LimitRule } from '../../../src/modules/limits/policy.js';
import { sqliteLimitStore, type LimitStore } from '../../../src/modules/limits/store.js';
import { pgLimitStore } from '../../../src/modules/limits/store.pg.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const keyed = (rule: LimitRule, group: string) => [{ rule, key: `${rule.id}|${group}` }];

function limitStoreBehaviours(engine: Engine, makeStore: (h: Handle, clock: Clock) => LimitStore): void {
  describe(`LimitStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let stores: LimitStore[];

    beforeAll(async () => {
      tdb = await engine.open('limits');
      stores = tdb.replicas.map((h) => makeStore(h, clock));
    });
    afterAll(async () => {
      await tdb?.close();
    });

    it('admits exactly the hard quota when three replicas take at once; refusals write nothing; the soft quota is audited once', async () => {
      const rule: LimitRule = { id: 'q', group: '*', daily_soft: 10, daily_hard: 25 };
      const results = await Promise.all(Array.from({ length: 45 }, (_, i) => stores[i % 3]!.take('dev', keyed(rule, 'dev'), T0)));
      expect(results.filter((r) => r.kind === 'admitted')).toHaveLength(25);
      const refused = results.filter((r) => r.kind === 'refused');
      expect(refused).toHaveLength(20);
      expect(refused[0]).toMatchObject({ code: 'quota_exceeded', limit: 25, retryAfterS: (dayStart(T0) + DAY_MS - T0) / 1000 });
      expect((await stores[0]!.usage(0)).map((u) => u.count)).toEqual([25]);
      const soft = await tdb.rows<{ kind: string; subject: string }>("SELECT kind, subject FROM gov_activities WHERE kind = 'quota.soft_exceeded'");
      expect(soft).toEqual([{ kind: 'quota.soft_exceeded', subject: 'limit:q|dev' }]);
      expect(await tdb.verifyChain()).toMatchObject({ ok: true });
    });

    it('refunds one call of the day, and starts the next UTC day from zero', async () => {
      const rule: LimitRule = { id: 'r', group: '*', daily_hard: 2 };
      const first = await stores[0]!.take('dev', keyed(rule, 'dev'), T0);
      expect((await stores[1]!.take('dev', keyed(rule, 'dev'), T0)).kind).toBe('admitted');
      expect((await stores[2]!.take('dev', keyed(rule, 'dev'), T0)).kind).toBe('refused');
      if (first.kind !== 'admitted') throw new Error('expected admitted');
      await stores[2]!.refund(first.ticket, T0);
      expect((await stores[2]!.take('dev', keyed(rule, 'dev'), T0)).kind).toBe('admitted');
      expect((await stores[0]!.take('dev', keyed(rule, 'dev'), T0 + DAY_MS)).kind).toBe('admitted');
      expect((await stores[0]!.usage(dayStart(T0))).filter((u) => u.key === 'r|dev').map((u) => u.count)).toEqual([2, 1]);
    });

    it('refills a token bucket with time: refused with Retry-After until a token is back', async () => {
      const rule: LimitRule = { id: 'b', group: '*', per_minute: 3 };
      for (let i = 0; i < 3; i += 1) expect((await stores[i]!.take('dev', keyed(rule, 'dev'), T0)).kind).toBe('admitted');
      expect(await stores[0]!.take('dev', keyed(rule, 'dev'), T0)).toMatchObject({ kind: 'refused', code: 'rate_limited', retryAfterS: 20 });
      expect((await stores[1]!.take('dev', keyed(rule, 'dev'), T0 + 19_999)).kind).toBe('refused');
      expect((await stores[2]!.take('dev', keyed(rule, 'dev'), T0 + 20_000)).kind).toBe('admitted');
    });
  });
}

for (const engine of ENGINES) {
  limitStoreBehaviours(engine, engine.name === 'sqlite' ? (h, clock) => sqliteLimitStore(sqliteOf(h), clock) : (h, clock) => pgLimitStore(pgOf(h), clock));
}
