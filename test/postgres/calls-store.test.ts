/**
 * The calls' store on both engines: each behaviour is written once, as a function of an engine
 * (a store with a way to look at its database), and run on a SQLite file and on a fresh PostgreSQL
 * database. Then what only several replicas can show, on PostgreSQL with 3 pools on one database:
 * the inflight lock, backpressure in total, crash recovery by two replicas at once, and one audit
 * chain after all of it.
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyChain, type ChainVerdict } from '../../src/platform/audit/chain.js';
import { verifyChainPg } from '../../src/platform/audit/trail.pg.js';
import { openDb } from '../../src/platform/db/open.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { brokerInstances as pgInstances } from '../../src/platform/lease/schema.pg.js';
import { brokerInstances as sqliteInstances } from '../../src/platform/lease/schema.js';
import { PgCallStore } from '../../src/modules/calls/store.pg.js';
import { DuplicateClaim, GroupBackpressure, SqliteCallStore, type AuditWrite, type CallEnd, type CallStore, type InterruptedPlan, type NewCall } from '../../src/modules/calls/store.js';
import { tempDir } from '../helpers/harness.js';
import { freshDatabase } from '../helpers/postgres.js';

/** A store and what a test needs to see of its database. */
interface Engine {
  store: CallStore;
  auditKinds(): Promise<string[]>;
  verify(): Promise<ChainVerdict>;
  addInstance(id: string, leaseUntil: number): Promise<void>;
  instanceIds(): Promise<string[]>;
  /** Makes every audit append fail (as a full disk would), until {@link mendAudit}. */
  breakAudit(): Promise<void>;
  mendAudit(): Promise<void>;
}

const LIMIT = 5;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function sqliteEngine(): Promise<Engine> {
  const db = openDb({ path: path.join(tempDir(), 'broker.db'), synchronous: 'NORMAL' });
  cleanups.push(() => {
    db.sqlite.close();
  });
  return {
    store: new SqliteCallStore(db),
    auditKinds: async () => db.sqlite.prepare('SELECT kind FROM gov_activities ORDER BY seq').pluck().all() as string[],
    verify: async () => verifyChain(db),
    addInstance: async (id, leaseUntil) => void db.orm.insert(sqliteInstances).values({ id, pid: 1, host: 'h', startedAt: 0, leaseUntil }).run(),
    instanceIds: async () => db.sqlite.prepare('SELECT id FROM broker_instances ORDER BY id').pluck().all() as string[],
    breakAudit: async () => void db.sqlite.exec(`CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END`),
    mendAudit: async () => void db.sqlite.exec('DROP TRIGGER temp.refuse_audit'),
  };
}

async function openPg(url: string): Promise<PgDb> {
  const db = await openPgDb({ url, poolMax: 10 });
  cleanups.push(() => db.close());
  return db;
}

async function pgEngineOn(db: PgDb): Promise<Engine> {
  return {
    store: new PgCallStore(db, { maxPendingPerGroup: LIMIT }),
    auditKinds: async () => (await db.pool.query<{ kind: string }>('SELECT kind FROM gov_activities ORDER BY seq')).rows.map((r) => r.kind),
    verify: () => verifyChainPg(db),
    addInstance: async (id, leaseUntil) => void (await db.orm.insert(pgInstances).values({ id, pid: 1, host: 'h', startedAt: 0, leaseUntil })),
    instanceIds: async () => (await db.pool.query<{ id: string }>('SELECT id FROM broker_instances ORDER BY id')).rows.map((r) => r.id),
    breakAudit: async () =>
      void (await db.orm.execute(sql.raw(`
        CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;
        CREATE TRIGGER test_refuse_audit BEFORE INSERT ON gov_activities FOR EACH ROW EXECUTE FUNCTION test_refuse_audit();`))),
    mendAudit: async () => void (await db.orm.execute(sql.raw('DROP TRIGGER test_refuse_audit ON gov_activities; DROP FUNCTION test_refuse_audit();'))),
  };
}

const ENGINES: [string, () => Promise<Engine>][] = [
  ['SQLite', sqliteEngine],
  ['PostgreSQL', async () => pgEngineOn(await openPg(await freshDatabase('calls')))],
];

const T0 = Date.UTC(2026, 0, 1);

function newCall(group: string, requestId: string, over: Partial<NewCall> = {}): NewCall {
  return {
    group, requestId, fingerprint: 'f'.repeat(64), action: 'test.read', level: 1, resource: 'o/r', summary: 'read o/r',
    taskId: null, grantId: 'grt_1', receipt: '{"steps":[]}', createdAt: T0, instanceId: 'inst-a', ...over,
  };
}
const audit = (kind: string, group: string, requestId: string, nowMs = T0): AuditWrite => ({ input: { actor: group, kind, subject: `call:${group}:${requestId}` }, nowMs });
const ended = (at: number, status: CallEnd['status'] = 'succeeded'): CallEnd => ({ status, httpStatus: 200, response: '{"ok":true}', attempts: 1, finishedAt: at, durationMs: 7 });
const claim = (store: CallStore, group: string, requestId: string, over: Partial<NewCall> = {}) =>
  store.claim(newCall(group, requestId, over), audit('call.claimed', group, requestId, over.createdAt));
const unknownOutcome: InterruptedPlan = (row, at) => ({ end: { ...ended(at, 'unknown_outcome'), httpStatus: 502 }, audit: { input: { actor: 'system', kind: 'call.unknown_outcome', subject: `call:${row.group}:${row.requestId}` }, nowMs: at } });

describe.each(ENGINES)('the calls store on %s', (_name, open) => {
  it('claims, finds and ends a call, each write with its audit row; a refusal is an audit row alone', async () => {
    const e = await open();
    await claim(e.store, 'developer', 'r1', { taskId: 'T1' });
    expect(await e.store.find('developer', 'r1')).toEqual({
      ...newCall('developer', 'r1', { taskId: 'T1' }), status: 'running', httpStatus: null, response: null, attempts: 0, finishedAt: null, durationMs: null,
    });
    await e.store.end('developer', 'r1', ended(T0 + 5), audit('call.succeeded', 'developer', 'r1', T0 + 5));
    expect(await e.store.find('developer', 'r1')).toMatchObject({ ...ended(T0 + 5), taskId: 'T1' });
    await e.store.recordRefusal(audit('call.denied', 'developer', 'r2'));
    expect(await e.store.find('developer', 'r2')).toBeUndefined();
    expect(await e.auditKinds()).toEqual(['call.claimed', 'call.succeeded', 'call.denied']);
    expect(e.store.stats.writes).toBe(3);
    expect(await e.verify()).toEqual({ ok: true, rows: 3 });
  });

  it('refuses a second claim of a key (DuplicateClaim) and an outcome for a call not running, writing nothing', async () => {
    const e = await open();
    await claim(e.store, 'developer', 'r1');
    await expect(claim(e.store, 'developer', 'r1', { fingerprint: 'e'.repeat(64) })).rejects.toBeInstanceOf(DuplicateClaim);
    await claim(e.store, 'main', 'r1'); // the key is the group's
    await e.store.end('developer', 'r1', ended(T0 + 1), audit('call.succeeded', 'developer', 'r1'));
    await expect(e.store.end('developer', 'r1', ended(T0 + 2, 'failed'), audit('call.failed', 'developer', 'r1'))).rejects.toThrow(/not running/);
    await expect(e.store.end('developer', 'nope', ended(T0 + 2), audit('call.succeeded', 'developer', 'nope'))).rejects.toThrow(/not running/);
    expect(await e.store.find('developer', 'r1')).toMatchObject({ status: 'succeeded', finishedAt: T0 + 1, fingerprint: 'f'.repeat(64) });
    expect(await e.auditKinds()).toEqual(['call.claimed', 'call.claimed', 'call.succeeded']);
    expect(await e.verify()).toMatchObject({ ok: true });
  });

  it('stores nothing when the audit row cannot be appended: 503 audit_unavailable, the key unused', async () => {
    const e = await open();
    await claim(e.store, 'developer', 'running');
    await e.breakAudit();
    await expect(claim(e.store, 'developer', 'r1')).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
    await expect(e.store.end('developer', 'running', ended(T0 + 1), audit('call.succeeded', 'developer', 'running'))).rejects.toMatchObject({ code: 'audit_unavailable' });
    await expect(e.store.recordRefusal(audit('call.denied', 'developer', 'r2'))).rejects.toMatchObject({ code: 'audit_unavailable' });
    await e.mendAudit();
    expect(await e.store.find('developer', 'r1')).toBeUndefined();
    expect(await e.store.find('developer', 'running')).toMatchObject({ status: 'running' });
    await claim(e.store, 'developer', 'r1');
    expect(await e.auditKinds()).toEqual(['call.claimed', 'call.claimed']);
  });

  it('lists newest first, then request id and group byte by byte, with filters and keyset pages', async () => {
    const e = await open();
    const keys: [string, string, number][] = [['main', 'b', 3], ['developer', 'B', 3], ['developer', 'a', 3], ['main', 'a', 3], ['developer', 'z', 1], ['main', 'Z', 2]];
    for (const [g, r, t] of keys) await claim(e.store, g, r, { createdAt: T0 + t, taskId: r === 'a' ? 'T1' : null });
    await e.store.end('main', 'Z', ended(T0 + 9), audit('call.succeeded', 'main', 'Z'));
    const order = (await e.store.list()).map((c) => `${c.group}/${c.requestId}`);
    expect(order).toEqual(['developer/B', 'developer/a', 'main/a', 'main/b', 'main/Z', 'developer/z']);
    const pages: string[] = [];
    let after: { createdAt: number; requestId: string; group: string } | undefined;
    for (;;) {
      const page = await e.store.list({ limit: 2, after });
      pages.push(...page.map((c) => `${c.group}/${c.requestId}`));
      if (page.length < 2) break;
      after = page[1]!;
    }
    expect(pages).toEqual(order);
    expect((await e.store.list({ group: 'developer' })).map((c) => c.requestId)).toEqual(['B', 'a', 'z']);
    expect((await e.store.list({ status: 'succeeded' })).map((c) => c.requestId)).toEqual(['Z']);
    expect((await e.store.list({ taskId: 'T1' })).map((c) => c.group)).toEqual(['developer', 'main']);
    expect((await e.store.list({ before: T0 + 3 })).map((c) => c.requestId)).toEqual(['Z', 'z']);
  });

  it('recovery ends the running calls of dead or unknown owners only, and deletes the expired leases', async () => {
    const e = await open();
    const now = T0 + 60_000;
    await e.addInstance('dead', now - 1);
    await e.addInstance('live', now + 30_000);
    await e.addInstance('self', now - 1); // its own lease is never treated as dead
    await claim(e.store, 'developer', 'of-dead', { instanceId: 'dead', createdAt: T0 + 2 });
    await claim(e.store, 'developer', 'of-nobody', { instanceId: null, createdAt: T0 + 1 });
    await claim(e.store, 'developer', 'of-gone', { instanceId: 'gone', createdAt: T0 + 3 });
    await claim(e.store, 'main', 'of-live', { instanceId: 'live' });
    await claim(e.store, 'main', 'of-self', { instanceId: 'self' });
    await claim(e.store, 'main', 'finished', { instanceId: 'dead' });
    await e.store.end('main', 'finished', ended(T0 + 5), audit('call.succeeded', 'main', 'finished'));

    const result = await e.store.endInterrupted('self', () => now, unknownOutcome);
    expect(result).toEqual({ marked: 3, expired: [{ id: 'dead', pid: 1, host: 'h' }] });
    const statuses = Object.fromEntries((await e.store.list()).map((c) => [c.requestId, c.status]));
    expect(statuses).toEqual({ 'of-dead': 'unknown_outcome', 'of-nobody': 'unknown_outcome', 'of-gone': 'unknown_outcome', 'of-live': 'running', 'of-self': 'running', finished: 'succeeded' });
    expect(await e.instanceIds()).toEqual(['live', 'self']);
    expect((await e.auditKinds()).slice(-3)).toEqual(['call.unknown_outcome', 'call.unknown_outcome', 'call.unknown_outcome']);
    expect(await e.store.endInterrupted('self', () => now, unknownOutcome)).toEqual({ marked: 0, expired: [] });
    expect(await e.verify()).toMatchObject({ ok: true });
  });

  it('purges finished calls created before the cutoff, in batches with one audit row each, never a running one', async () => {
    const e = await open();
    for (let i = 0; i < 5; i += 1) {
      await claim(e.store, 'developer', `old${i}`, { createdAt: T0 + i });
      await e.store.end('developer', `old${i}`, ended(T0 + 10), audit('call.succeeded', 'developer', `old${i}`));
    }
    await claim(e.store, 'developer', 'old-running', { createdAt: T0 });
    await claim(e.store, 'developer', 'new', { createdAt: T0 + 1000 });
    await e.store.end('developer', 'new', ended(T0 + 1001), audit('call.succeeded', 'developer', 'new'));
    const before = T0 + 100;
    expect(await e.store.countPurgeable(before)).toBe(5);
    const purged = (n: number): AuditWrite => ({ input: { actor: 'system', kind: 'calls.purged', subject: 'ext_calls', detail: { before, deleted: n } }, nowMs: T0 + 2000 });
    expect(await e.store.purgeBatch(before, 3, purged)).toBe(3);
    expect(await e.store.purgeBatch(before, 3, purged)).toBe(2);
    expect(await e.store.purgeBatch(before, 3, purged)).toBe(0);
    expect((await e.store.list()).map((c) => c.requestId).sort()).toEqual(['new', 'old-running']);
    expect((await e.auditKinds()).filter((k) => k === 'calls.purged')).toHaveLength(2);
    expect(await e.verify()).toMatchObject({ ok: true });
  });
});

describe('backpressure is the PostgreSQL store\'s only (SQLite has one process, whose in-memory count is exact)', () => {
  it.each(ENGINES)('on %s', async (name, open) => {
    const e = await open();
    const claims = await Promise.allSettled(Array.from({ length: LIMIT + 2 }, (_, i) => claim(e.store, 'developer', `k${i}`)));
    const refused = claims.filter((c) => c.status === 'rejected').map((c) => (c as PromiseRejectedResult).reason);
    expect(refused).toHaveLength(name === 'SQLite' ? 0 : 2);
    for (const r of refused) expect(r).toMatchObject({ name: 'GroupBackpressure', group: 'developer', pending: LIMIT, limit: LIMIT });
  });
});

describe('the calls store across 3 PostgreSQL replicas', () => {
  async function replicas(label: string): Promise<{ engines: Engine[]; dbs: PgDb[] }> {
    const url = await freshDatabase(label);
    const dbs = await Promise.all([openPg(url), openPg(url), openPg(url)]);
    return { dbs, engines: await Promise.all(dbs.map(pgEngineOn)) };
  }
  const reasons = (settled: PromiseSettledResult<void>[]) => settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason as Error);

  it('50 concurrent claims of one key: exactly one is claimed, the 49 others are DuplicateClaim', async () => {
    const { engines, dbs } = await replicas('calls_inflight');
    const settled = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => claim(engines[i % 3]!.store, 'developer', 'one-key', { instanceId: `inst-${i % 3}` })));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    const lost = reasons(settled);
    expect(lost).toHaveLength(49);
    for (const err of lost) expect(err).toBeInstanceOf(DuplicateClaim);
    expect((await dbs[0]!.pool.query('SELECT count(*)::int AS n FROM ext_calls')).rows[0]).toEqual({ n: 1 });
    expect(await engines[1]!.verify()).toEqual({ ok: true, rows: 1 });
  });

  it('20 concurrent claims of one group: 5 claimed in total, 15 refused as backpressure; another group is unaffected', async () => {
    const { engines } = await replicas('calls_backpressure');
    const mine = Array.from({ length: 20 }, (_, i) => claim(engines[i % 3]!.store, 'developer', `d${i}`));
    const others = Array.from({ length: 4 }, (_, i) => claim(engines[(i + 1) % 3]!.store, 'main', `m${i}`));
    const [settled, otherSettled] = await Promise.all([Promise.allSettled(mine), Promise.allSettled(others)]);
    expect(otherSettled.every((s) => s.status === 'fulfilled')).toBe(true);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(LIMIT);
    const refused = reasons(settled);
    expect(refused).toHaveLength(15);
    for (const err of refused) expect(err).toBeInstanceOf(GroupBackpressure);
    expect(refused[0]).toMatchObject({ group: 'developer', pending: LIMIT, limit: LIMIT });

    // A claimed key is still answered as taken when the group is full (the key is checked first).
    const claimed = (await engines[0]!.store.list({ group: 'developer' })).map((c) => c.requestId);
    expect(claimed).toHaveLength(LIMIT);
    await expect(claim(engines[1]!.store, 'developer', claimed[0]!)).rejects.toBeInstanceOf(DuplicateClaim);
    // An outcome on one replica frees a slot for a claim on another, and only one.
    await engines[2]!.store.end('developer', claimed[0]!, ended(T0 + 1), audit('call.succeeded', 'developer', claimed[0]!));
    const next = await Promise.allSettled([claim(engines[0]!.store, 'developer', 'n1'), claim(engines[1]!.store, 'developer', 'n2')]);
    expect(next.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect(reasons(next)[0]).toBeInstanceOf(GroupBackpressure);
    expect(await engines[0]!.verify()).toEqual({ ok: true, rows: LIMIT + 4 + 1 + 1 });
  });

  it('two replicas recovering at once end each interrupted call once', async () => {
    const { engines } = await replicas('calls_recovery');
    const now = T0 + 60_000;
    await engines[0]!.addInstance('dead', now - 1);
    for (let i = 0; i < 12; i += 1) await claim(engines[i % 3]!.store, `g${i % 4}`, `c${i}`, { instanceId: 'dead' });
    const [a, b] = await Promise.all([engines[1]!.store.endInterrupted('r1', () => now, unknownOutcome), engines[2]!.store.endInterrupted('r2', () => now, unknownOutcome)]);
    expect(a.marked + b.marked).toBe(12);
    expect([...a.expired, ...b.expired].map((x) => x.id)).toEqual(['dead']);
    expect((await engines[0]!.auditKinds()).filter((k) => k === 'call.unknown_outcome')).toHaveLength(12);
    expect(await engines[0]!.verify()).toEqual({ ok: true, rows: 24 });
  });

  it('fails closed when the database is unreachable: a claim is 503 audit_unavailable, a read 503 service_unavailable', async () => {
    const db = await openPgDb({ url: 'postgres://broker:secret@127.0.0.1:1/broker', migrate: false, poolMax: 1, connectTimeoutMs: 500 });
    cleanups.push(() => db.close());
    const store = new PgCallStore(db, { maxPendingPerGroup: LIMIT });
    const claimed = await claim(store, 'developer', 'r1').catch((e: unknown) => e);
    expect(claimed).toBeInstanceOf(ApiError);
    expect(claimed).toMatchObject({ code: 'audit_unavailable', status: 503 });
    expect(JSON.stringify((claimed as ApiError).extensions)).not.toContain('secret');
    await expect(store.find('developer', 'r1')).rejects.toMatchObject({ code: 'service_unavailable', status: 503 });
  });

  it('throughput, one transaction per write (reported, not asserted)', async () => {
    const { engines } = await replicas('calls_throughput');
    const sqlite = await sqliteEngine();
    /** `n` calls claimed and ended by `workers` concurrent callers (10 per store), in groups of their own. */
    const run = async (label: string, stores: CallStore[], n: number) => {
      const workers = stores.length * 10;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          for (let i = next++; i < n; i = next++) {
            const store = stores[w % stores.length]!;
            const [g, r] = [`g${w}`, `${label}${i}`];
            await claim(store, g, r);
            await store.end(g, r, ended(T0 + 1), audit('call.succeeded', g, r));
          }
        }),
      );
      return Math.round((n / (performance.now() - started)) * 1000);
    };
    const pg3 = await run('a', engines.map((e) => e.store), 600);
    const pg1 = await run('b', [engines[0]!.store], 300);
    const lite = await run('c', [sqlite.store], 600);
    console.log(`calls claimed and ended per second: PostgreSQL 3 pools ${pg3}, 1 pool ${pg1}; SQLite (group commit, synchronous=NORMAL) ${lite}`);
    expect(await engines[0]!.verify()).toMatchObject({ ok: true, rows: 1800 });
  });
});
