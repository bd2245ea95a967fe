/**
 * The PostgreSQL stores fail closed: with the database unreachable, read-only, or a connection
 * lost while a write waits for another replica's lock, every store method rejects with a 503
 * (`service_unavailable`, or `audit_unavailable` when the audit append is what failed) and writes
 * nothing, never a 500 and never a synchronous throw; the pool then serves again by itself.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgAuditStore } from '../../../src/modules/audit/store.pg.js';
import { pgGrantRequestStore } from '../../../src/modules/grant-requests/store.pg.js';
import { pgGrantStore } from '../../../src/modules/grants/store.pg.js';
import { pgGroupKeyStore } from '../../../src/modules/identity/store.pg.js';
import { pgRunStore } from '../../../src/modules/runner/store.pg.js';
import { pgSwitchStore } from '../../../src/modules/switches/store.pg.js';
import { pgTokenStore } from '../../../src/modules/tokens/store.pg.js';
import { ManualClock } from '../../../src/platform/clock.js';
import { openPgDb, PG_LOCK_CLASS, PG_LOCKS, type PgDb } from '../../../src/platform/db/pg.js';
import type { Planned } from '../../../src/platform/db/seam.js';
import { REPO_ROOT } from '../../helpers/harness.js';
import { freshDatabase, testServerUrl } from '../../helpers/postgres.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const clock = new ManualClock(T0);
const opened: PgDb[] = [];
afterAll(async () => {
  await Promise.all(opened.map((db) => db.close()));
});
async function open(url: string, migrate = true): Promise<PgDb> {
  const db = await openPgDb({ url, migrate, poolMax: 4, connectTimeoutMs: 2000 });
  opened.push(db);
  return db;
}

const grantRow = (id: string) => ({
  id, group: 'developer', provider: 'ops', level: 1, allowedActions: null, deniedActions: null, resources: null, reason: 'r', requestedBy: 'main',
  status: 'active', ttlS: null, requestedExpiresAt: null, digest: 'd', createdAt: T0, updatedAt: T0, activatedAt: T0, expiresAt: null,
  pendingExpiresAt: null, rejectedAt: null, revokedAt: null, revokedBy: null, revokeReason: null, idempotencyKey: null, requestHash: null,
});
const createPlan = (id: string) => (): Planned<ReturnType<typeof grantRow>, string> => ({ write: grantRow(id), audit: [{ actor: 'main', kind: 'grant.created', subject: id }], result: id });
const requestRow = (id: string) => ({
  id, group: 'developer', provider: 'ops', level: 1, allowedActions: null, deniedActions: null, resources: null, ttlS: 60, justification: 'j', renews: null,
  renewalOf: null,
  status: 'pending', createdAt: T0, updatedAt: T0, pendingExpiresAt: T0 + 60_000, decidedBy: null, decidedAt: null, decisionReason: null, grantId: null,
  idempotencyKey: null, requestHash: null,
});
const switchRow = (id: string) => ({ id, scope: 'all', target: null, reason: 'r', setBy: 'operator:a', setAt: T0, clearedBy: null, clearedAt: null, clearReason: null, idempotencyKey: 'k', requestHash: 'h' });
const runRow = (id: string) => ({ id, dispatchKey: `dk-${id}`, dispatchId: 'd', taskId: 't', group: 'developer', status: 'claimed' as const, createdAt: T0 });
const revokePlan = () => ({ id: 'rvk_1', jti: 'j', subject: null, role: null, issuedBefore: null, revokedAt: T0, revokedBy: 'operator:a', reason: 'r', idempotencyKey: null, requestHash: null });

/** Every method of every store, called once (what each must do when the database is not there). */
function everyMethod(db: PgDb): [string, () => Promise<unknown>][] {
  const grants = pgGrantStore(db, clock);
  const tokens = pgTokenStore(db, clock);
  const keys = pgGroupKeyStore(db, clock);
  const audit = pgAuditStore(db);
  const requests = pgGrantRequestStore(db, clock);
  const runs = pgRunStore(db);
  const switches = pgSwitchStore(db, clock);
  return [
    ['grants.get', () => grants.get('grt_1')],
    ['grants.list', () => grants.list({ limit: 10 }, T0)],
    ['grants.timeline', () => grants.timeline('grt_1')],
    ['grants.create', () => grants.create('main', 'k', createPlan('grt_1'))],
    ['grants.change', () => grants.change('grt_1', () => ({ result: 1 }))],
    ['grants.revokeAll', () => grants.revokeAll('developer', undefined, () => ({ result: 1 }))],
    ['grants.recordRefusal', () => grants.recordRefusal('grt_1', { actor: 'a', kind: 'k', subject: 'grt_1' })],
    ['grants.approvers', () => grants.approvers()],
    ['grants.addApprover', () => grants.addApprover('x', () => ({ result: 1 }))],
    ['tokens.findRevocation', () => tokens.findRevocation({ jti: 'j', subject: 's', role: 'operator', issuedAtS: 1 })],
    ['tokens.revoke', () => tokens.revoke('operator:a', 'k', { jti: 'j' }, () => ({ write: revokePlan(), result: 1 }))],
    ['tokens.listRevocations', () => tokens.listRevocations({ limit: 10 })],
    ['tokens.key', () => tokens.key('kid')],
    ['tokens.keys', () => tokens.keys()],
    ['tokens.registerKey', () => tokens.registerKey('kid', () => ({ result: 1 }))],
    ['tokens.retireKeys', () => tokens.retireKeys(() => ({ result: 1 }))],
    ['tokens.audit', () => tokens.audit([{ actor: 'a', kind: 'token.minted', subject: 't' }])],
    ['keys.groupsWithKeys', () => keys.groupsWithKeys()],
    ['keys.change', () => keys.change('main', () => ({ result: 1 }))],
    ['audit.list', () => audit.list({ since: 0, limit: 10 })],
    ['requests.get', () => requests.get('grq_1')],
    ['requests.list', () => requests.list({ limit: 10 }, T0)],
    ['requests.timeline', () => requests.timeline('grq_1')],
    ['requests.create', () => requests.create('developer', 'k', () => ({ write: requestRow('grq_1'), audit: [{ actor: 'developer', kind: 'grant_request.created', subject: 'grq_1' }], result: 1 }))],
    ['requests.change', () => requests.change('grq_1', () => ({ result: 1 }))],
    ['requests.expireDue', () => requests.expireDue(10, () => ({ result: 1 }))],
    ['requests.recordRefusal', () => requests.recordRefusal('grq_1', { actor: 'a', kind: 'k', subject: 'grq_1' })],
    ['runs.claim', () => runs.claim(runRow('run_1'), { actor: 'system', kind: 'run.claimed', subject: 't' })],
    ['runs.update', () => runs.update('run_1', ['claimed'], { status: 'running' }, [], T0)],
    ['runs.find', () => runs.find('run_1')],
    ['runs.withStatus', () => runs.withStatus(['claimed'])],
    ['runs.ofTask', () => runs.ofTask('t')],
    ['runs.claimedKeys', () => runs.claimedKeys(['dk'])],
    ['runs.list', () => runs.list({ limit: 10 })],
    ['runs.counts', () => runs.counts()],
    ['switches.get', () => switches.get('ksw_1')],
    ['switches.list', () => switches.list({ limit: 10 })],
    ['switches.set', () => switches.set('operator:a', 'k', () => ({ write: switchRow('ksw_1'), audit: [{ actor: 'operator:a', kind: 'switch.set', subject: 'ksw_1' }], result: 1 }))],
    ['switches.clear', () => switches.clear('ksw_1', () => ({ result: 1 }))],
    ['switches.activeNow', () => switches.activeNow()],
  ];
}

/** Waits (polling, no deadline of its own) until a backend of `database` waits on an advisory lock; returns its pid. */
async function lockWaiter(admin: pg.Client, database: string): Promise<number> {
  for (;;) {
    const r = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'", [database]);
    if (r.rows[0]) return r.rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('PostgreSQL stores fail closed', () => {
  let admin: pg.Client;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: testServerUrl() });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });

  it('an unreachable server: every method of every store rejects with 503 service_unavailable', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const dead = await open(`postgres://broker:pw@127.0.0.1:${port}/broker`, false);
    for (const [name, call] of everyMethod(dead)) {
      let pending: Promise<unknown> | undefined;
      expect(() => {
        pending = call();
      }, name).not.toThrow();
      await expect(pending, name).rejects.toMatchObject({ code: 'service_unavailable', status: 503, headers: { 'Retry-After': '1' } });
    }
  });

  it('a read-only database: every write rejects with 503 and writes nothing; the reads still answer', async () => {
    const url = await freshDatabase('stores_ro');
    await (await open(url)).close();
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(new URL(url).pathname.slice(1))} SET default_transaction_read_only = on`);
    const ro = await open(url, false);
    const results = new Map<string, unknown>();
    for (const [name, call] of everyMethod(ro)) results.set(name, await call().then(() => 'ok', (e: { code?: string }) => e.code ?? e));
    expect(Object.fromEntries(results)).toEqual({
      'grants.get': 'ok',
      'grants.list': 'ok',
      'grants.timeline': 'ok',
      // A planned write locks the rows it reads (FOR UPDATE), which a read-only transaction refuses,
      // as SQLite refuses BEGIN IMMEDIATE on a read-only file: refused even where the plan would write nothing.
      'grants.create': 'service_unavailable',
      'grants.change': 'service_unavailable',
      'grants.revokeAll': 'service_unavailable',
      'grants.addApprover': 'service_unavailable',
      'tokens.revoke': 'service_unavailable',
      'tokens.registerKey': 'service_unavailable',
      'tokens.retireKeys': 'service_unavailable',
      'keys.change': 'service_unavailable',
      // Audit rows alone: the append is what fails.
      'tokens.audit': 'audit_unavailable',
      // A refusal of a grant that does not exist has nothing to record.
      'grants.recordRefusal': 'ok',
      'grants.approvers': 'ok',
      'tokens.findRevocation': 'ok',
      'tokens.listRevocations': 'ok',
      'tokens.key': 'ok',
      'tokens.keys': 'ok',
      'keys.groupsWithKeys': 'ok',
      'audit.list': 'ok',
      'requests.get': 'ok',
      'requests.list': 'ok',
      'requests.timeline': 'ok',
      'requests.create': 'service_unavailable',
      'requests.change': 'service_unavailable',
      'requests.expireDue': 'service_unavailable',
      'requests.recordRefusal': 'ok',
      'runs.claim': 'service_unavailable',
      'runs.update': 'service_unavailable',
      'runs.find': 'ok',
      'runs.withStatus': 'ok',
      'runs.ofTask': 'ok',
      'runs.claimedKeys': 'ok',
      'runs.list': 'ok',
      'runs.counts': 'ok',
      'switches.get': 'ok',
      'switches.list': 'ok',
      'switches.set': 'service_unavailable',
      'switches.clear': 'service_unavailable',
      'switches.activeNow': 'ok',
    });
    expect(Number((await ro.pool.query<{ n: string }>('SELECT count(*) AS n FROM gov_activities')).rows[0]!.n)).toBe(0);
  });

  it('a write whose connection is lost while it waits for another replica: 503, nothing written; the pool serves the next write', async () => {
    const url = await freshDatabase('stores_lost');
    const database = new URL(url).pathname.slice(1);
    const replica = await open(url);
    const grants = pgGrantStore(replica, clock);
    const tokens = pgTokenStore(replica, clock);
    // Another replica holds the grant lock and the audit lock, mid-transaction.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2), pg_advisory_xact_lock($1, $3)', [PG_LOCK_CLASS, PG_LOCKS.grantChanges, PG_LOCKS.auditAppend]);

      const created = grants.create('main', null, createPlan('grt_lost')).catch((e: unknown) => e);
      await admin.query('SELECT pg_terminate_backend($1)', [await lockWaiter(admin, database)]);
      expect(await created).toMatchObject({ code: 'service_unavailable', status: 503 });

      // Waiting in the audit append (the revocation took its own lock): the append fails, and so does
      // the rollback on the lost connection, which is what answers: the database is not there.
      const revoked = tokens.revoke('operator:a', null, { jti: 'j' }, () => ({ write: revokePlan(), audit: [{ actor: 'operator:a', kind: 'token.revoked', subject: 'rvk_1' }], result: 1 })).catch((e: unknown) => e);
      await admin.query('SELECT pg_terminate_backend($1)', [await lockWaiter(admin, database)]);
      expect(await revoked).toMatchObject({ code: 'service_unavailable', status: 503, extensions: { cause: 'Connection terminated unexpectedly' } });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const count = async (t: string) => Number((await replica.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
    expect([await count('grants'), await count('token_revocations'), await count('gov_activities')]).toEqual([0, 0, 0]);
    await expect(grants.create('main', null, createPlan('grt_after'))).resolves.toBe('grt_after');
    expect(await count('gov_activities')).toBe(1);
  });

  it('a broker process whose transaction connection the server drops answers 503 and keeps running (no crash on the error event)', async () => {
    const url = await freshDatabase('stores_crash');
    await (await open(url)).close();
    const dist = (file: string) => pathToFileURL(path.join(REPO_ROOT, 'dist/src', file)).href;
    // A real process (the compiled store, as `broker serve` runs it): a write waits for a lock another
    // replica holds, its connection is terminated, and the process reports what the write answered.
    const script = `
      import pg from 'pg';
      import { openPgDb, PG_LOCK_CLASS, PG_LOCKS } from ${JSON.stringify(dist('platform/db/pg.js'))};
      import { pgGrantStore } from ${JSON.stringify(dist('modules/grants/store.pg.js'))};
      const url = process.env.URL;
      const db = await openPgDb({ url, migrate: false });
      const holder = new pg.Client({ connectionString: url });
      const admin = new pg.Client({ connectionString: url });
      await holder.connect();
      await admin.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [PG_LOCK_CLASS, PG_LOCKS.grantChanges]);
      const plan = () => ({ result: 'written' });
      const answer = pgGrantStore(db, { now: () => 0 }).create('main', 'k', plan).then(() => 'ok', (e) => e.code);
      let pid;
      while (!pid) {
        const r = await admin.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'");
        pid = r.rows[0]?.pid;
      }
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const code = await answer;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const after = await pgGrantStore(db, { now: () => 0 }).get('grt_none').then(() => 'ok', (e) => e.code);
      await holder.query('ROLLBACK');
      await Promise.all([holder.end(), admin.end(), db.close()]);
      console.log(JSON.stringify({ code, after }));
    `;
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, env: { ...process.env, URL: url } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ code: 'service_unavailable', after: 'ok' });
  });
});
