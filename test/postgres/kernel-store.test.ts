/**
 * The kernel's task store on both engines, through the kernel's own services: each behaviour is
 * written once, as a function of an engine, and run on a SQLite file and on a fresh PostgreSQL
 * database. Then what only several replicas can show, on PostgreSQL with several pools on one
 * database: two dispatch loops dispatch each task once, one idempotency key makes one task, one
 * version admits one change, and the audit chain verifies after all of it.
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyChain, type ChainVerdict } from '../../src/platform/audit/chain.js';
import { verifyChainPg } from '../../src/platform/audit/trail.pg.js';
import { ManualClock } from '../../src/platform/clock.js';
import { openDb } from '../../src/platform/db/open.js';
import { openPgDb, type PgDb } from '../../src/platform/db/pg.js';
import { createLogger } from '../../src/platform/log.js';
import { loadGroups } from '../../src/modules/identity/groups.js';
import { dispatchKey } from '../../src/modules/kernel/dispatch-plan.js';
import type { KernelDeps } from '../../src/modules/kernel/service/common.js';
import { createTask } from '../../src/modules/kernel/service/create.js';
import { ackDispatch, dispatchTask, runDispatchOnce, type DispatchDeps } from '../../src/modules/kernel/service/dispatch.js';
import { overrideGate } from '../../src/modules/kernel/service/gates.js';
import { transitionTask } from '../../src/modules/kernel/service/transition.js';
import { pgTaskStore } from '../../src/modules/kernel/store.pg.js';
import { sqliteTaskStore, type TaskStore } from '../../src/modules/kernel/store.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { freshDatabase } from '../helpers/postgres.js';

/** The kernel's deps over one engine's store, and what a test needs to see of its database. */
interface Engine {
  deps: DispatchDeps;
  auditKinds(): Promise<string[]>;
  count(table: 'tasks' | 'task_dispatches' | 'task_gate_decisions'): Promise<number>;
  verify(): Promise<ChainVerdict>;
  /** Makes every audit append fail (as a full disk would), until {@link mendAudit}. */
  breakAudit(): Promise<void>;
  mendAudit(): Promise<void>;
}

const GROUPS = loadGroups(path.join(REPO_ROOT, 'policies'));
const logger = createLogger('silent');
const depsOf = (tasks: TaskStore, clock = new ManualClock()): DispatchDeps => ({ tasks, clock, groups: GROUPS, logger, config: { dispatchIntervalMs: 1000 } });

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function sqliteEngine(): Promise<Engine> {
  const db = openDb({ path: path.join(tempDir(), 'kernel.db'), synchronous: 'NORMAL' });
  cleanups.push(() => {
    db.sqlite.close();
  });
  const q = (text: string) => db.sqlite.prepare(text);
  return {
    deps: depsOf(sqliteTaskStore(db)),
    auditKinds: async () => q('SELECT kind FROM gov_activities ORDER BY seq').pluck().all() as string[],
    count: async (table) => q(`SELECT count(*) FROM ${table}`).pluck().get() as number,
    verify: async () => verifyChain(db),
    breakAudit: async () => void db.sqlite.exec(`CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END`),
    mendAudit: async () => void db.sqlite.exec('DROP TRIGGER temp.refuse_audit'),
  };
}

async function openPg(url: string): Promise<PgDb> {
  const db = await openPgDb({ url, poolMax: 10 });
  cleanups.push(() => db.close());
  return db;
}

function pgEngineOn(db: PgDb, clock?: ManualClock): Engine {
  return {
    deps: depsOf(pgTaskStore(db), clock),
    auditKinds: async () => (await db.pool.query<{ kind: string }>('SELECT kind FROM gov_activities ORDER BY seq')).rows.map((r) => r.kind),
    count: async (table) => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n,
    verify: () => verifyChainPg(db),
    breakAudit: async () =>
      void (await db.orm.execute(sql.raw(`
        CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;
        CREATE TRIGGER test_refuse_audit BEFORE INSERT ON gov_activities FOR EACH ROW EXECUTE FUNCTION test_refuse_audit();`))),
    mendAudit: async () => void (await db.orm.execute(sql.raw('DROP TRIGGER test_refuse_audit ON gov_activities; DROP FUNCTION test_refuse_audit();'))),
  };
}

const ENGINES: [string, () => Promise<Engine>][] = [
  ['SQLite', sqliteEngine],
  ['PostgreSQL', async () => pgEngineOn(await openPg(await freshDatabase('kernel')))],
];

/** A READY task assigned to developer (version 3), made through the services. */
async function readyTask(deps: KernelDeps, title = 'seam', type: 'BUG' | 'SECURITY' = 'BUG'): Promise<string> {
  const { task } = await createTask(deps, 'main', { title, type, assigned_group: 'developer' }, null);
  await transitionTask(deps, task.id, 'main', '"v1"', { to: 'TRIAGED' });
  await transitionTask(deps, task.id, 'main', '"v2"', { to: 'READY' });
  return task.id;
}

describe.each(ENGINES)('the task store on %s', (_name, open) => {
  it('creates once per idempotency key: a retry answers the task as it is now, another body is 422', async () => {
    const { deps, count, auditKinds } = await open();
    const idem = { key: 'k-1', requestHash: 'h1' };
    const first = await createTask(deps, 'main', { title: 'once', type: 'BUG' }, idem);
    expect(first).toMatchObject({ replayed: false, task: { title: 'once', state: 'INBOX', version: 1, idempotencyKey: 'k-1' } });
    await transitionTask(deps, first.task.id, 'main', '"v1"', { to: 'TRIAGED' });
    const again = await createTask(deps, 'main', { title: 'once', type: 'BUG' }, idem);
    expect(again).toMatchObject({ replayed: true, task: { id: first.task.id, state: 'TRIAGED', version: 2 } });
    await expect(createTask(deps, 'main', { title: 'other', type: 'BUG' }, { key: 'k-1', requestHash: 'h2' })).rejects.toMatchObject({ code: 'idempotency_key_reused', status: 422 });
    await expect(createTask(deps, 'main', { title: 'child', type: 'BUG', parent_task_id: 'NOPE' }, null)).rejects.toMatchObject({ code: 'validation_failed' });
    const child = await createTask(deps, 'main', { title: 'child', type: 'BUG', parent_task_id: first.task.id }, null);
    expect(child.task.parentTaskId).toBe(first.task.id);
    expect(await count('tasks')).toBe(2);
    expect(await auditKinds()).toEqual(['task.created', 'task.transition', 'task.created']);
  });

  it('checks If-Match against the row it writes: a stale version is 412, and of two moves planned on one version one wins', async () => {
    const { deps, verify } = await open();
    const id = await readyTask(deps);
    await expect(transitionTask(deps, id, 'developer', '"v2"', { to: 'DOING' })).rejects.toMatchObject({ code: 'precondition_failed', status: 412 });
    const both = await Promise.allSettled([
      transitionTask(deps, id, 'developer', '"v3"', { to: 'DOING' }),
      transitionTask(deps, id, 'main', '"v3"', { to: 'BLOCKED', reason: 'vendor' }),
    ]);
    expect(both.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
    expect((both.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'precondition_failed' });
    expect(await deps.tasks.find(id)).toMatchObject({ version: 4 });
    await expect(transitionTask(deps, id, 'developer', '"v4"', { to: 'DONE' })).rejects.toMatchObject({ code: 'illegal_transition' });
    expect((await deps.tasks.activity(id)).map((a) => a.kind)).toEqual(['task.created', 'task.transition', 'task.transition', 'task.transition', 'task.refused']);
    expect(await verify()).toMatchObject({ ok: true, rows: 5 });
  });

  it('changes nothing when the audit rows cannot be appended (503 audit_unavailable)', async () => {
    const e = await open();
    const id = await readyTask(e.deps);
    const before = await e.auditKinds();
    await e.breakAudit();
    await expect(transitionTask(e.deps, id, 'developer', '"v3"', { to: 'DOING' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    await expect(createTask(e.deps, 'main', { title: 'never', type: 'BUG' }, { key: 'k-1', requestHash: 'h' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    await expect(dispatchTask(e.deps, id)).rejects.toMatchObject({ code: 'audit_unavailable' });
    await e.mendAudit();
    expect(await e.deps.tasks.find(id)).toMatchObject({ state: 'READY', version: 3 });
    expect(await e.count('tasks')).toBe(1);
    expect(await e.count('task_dispatches')).toBe(0);
    expect(await e.auditKinds()).toEqual(before);
  });

  it('dispatches a READY task once and acks it once; lists dispatches and tasks in pages', async () => {
    const { deps, auditKinds, verify } = await open();
    const ids = [await readyTask(deps, 'a'), await readyTask(deps, 'b'), await readyTask(deps, 'c')];
    expect(await deps.tasks.dispatchCandidates()).toEqual(ids);
    const pass = await runDispatchOnce(deps);
    expect(pass).toMatchObject({ examined: 3, failed: 0 });
    expect(pass.dispatched.map((d) => d.dispatchKey)).toEqual(ids.map((id) => dispatchKey(id, 'DOING', 3)));
    expect((await runDispatchOnce(deps)).examined).toBe(0);
    const page1 = await deps.tasks.listDispatches({ group: 'developer', limit: 2 });
    const page2 = await deps.tasks.listDispatches({ group: 'developer', limit: 2, startingAfter: page1.rows[1]!.id });
    expect([page1.hasMore, page2.hasMore]).toEqual([true, false]);
    expect([...page1.rows, ...page2.rows].map((d) => d.taskId)).toEqual(ids);
    const d = page1.rows[0]!;
    expect(await ackDispatch(deps, d.id, 'developer')).toMatchObject({ status: 'acked', ackedAt: deps.clock.now() });
    expect(await ackDispatch(deps, d.id, 'developer')).toMatchObject({ status: 'acked' });
    await expect(ackDispatch(deps, d.id, 'main')).rejects.toMatchObject({ code: 'not_found' });
    expect((await deps.tasks.listDispatches({ group: 'developer', status: 'pending', limit: 10 })).rows).toHaveLength(2);
    expect(await deps.tasks.dispatchesOf(ids[0]!)).toEqual([{ ...d, status: 'acked', ackedAt: deps.clock.now() }]);
    const tasks = await deps.tasks.list({ state: 'DOING', group: 'developer', type: 'BUG', limit: 2, startingAfter: ids[0] });
    expect({ ids: tasks.rows.map((t) => t.id), hasMore: tasks.hasMore }).toEqual({ ids: ids.slice(1), hasMore: false });
    expect((await auditKinds()).filter((k) => k === 'dispatch.acked')).toHaveLength(1);
    expect(await verify()).toMatchObject({ ok: true });
  });

  it('takes a dispatch key once: a second write of it rolls back its whole move', async () => {
    const { deps, auditKinds, count } = await open();
    const id = await readyTask(deps);
    const first = await dispatchTask(deps, id);
    expect(first).toMatchObject({ dispatchKey: dispatchKey(id, 'DOING', 3), kind: 'execute', group: 'developer' });
    const after = { task: await deps.tasks.find(id), audit: await auditKinds() };
    // A plan that makes the same move again (as if it had read version 3): the task write would
    // pass on its own, but the dispatch key is taken, so nothing of it stays.
    const replay = (current: Parameters<Parameters<TaskStore['dispatch']>[1]>[0]) => ({
      nowMs: 1,
      patch: { state: 'REVIEW' as const },
      dispatch: { ...first!, id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', taskId: current!.id },
      activities: [{ actor: 'system', kind: 'task.transition', subject: id }],
    });
    expect(await deps.tasks.dispatch(id, replay)).toBeNull();
    await expect(deps.tasks.change(id, replay)).rejects.toMatchObject({ code: expect.stringMatching(/^(SQLITE_CONSTRAINT_UNIQUE|23505)$/) });
    expect(await deps.tasks.find(id)).toEqual(after.task);
    expect(await auditKinds()).toEqual(after.audit);
    expect(await dispatchTask(deps, id)).toBeNull();
    expect(await count('task_dispatches')).toBe(1);
  });

  it('an override writes the gate, its decision and the follow-up task in one transaction', async () => {
    const { deps } = await open();
    const id = await readyTask(deps, 'gated', 'SECURITY');
    const { task, followUp } = await overrideGate(deps, id, 'main', '"v3"', { reason: 'hotfix', riskAcceptance: 'accepted by main' });
    expect(task).toMatchObject({ id, gateStatus: 'overridden', version: 4 });
    expect(followUp).toMatchObject({ parentTaskId: id, priority: 'P0', type: 'SECURITY', state: 'INBOX', createdBy: 'main' });
    expect(await deps.tasks.gateDecisions(id)).toMatchObject([{ taskId: id, decision: 'overridden', followUpTaskId: followUp.id, riskAcceptance: 'accepted by main' }]);
    expect((await deps.tasks.activity(id)).at(-1)).toMatchObject({ kind: 'task.override', detail: { follow_up_task_id: followUp.id, version: 4 } });
  });
});

describe('the task store across PostgreSQL replicas', () => {
  async function replicas(label: string, n: number): Promise<Engine[]> {
    const url = await freshDatabase(label);
    const clock = new ManualClock();
    const dbs = await Promise.all(Array.from({ length: n }, () => openPg(url)));
    return dbs.map((db) => pgEngineOn(db, clock));
  }

  it('two dispatch loops on two pools over 20 READY tasks dispatch each task exactly once', async () => {
    const [a, b] = await replicas('kernel_dispatch', 2);
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) ids.push(await readyTask(a!.deps, `race ${i}`));
    const passes = await Promise.all([runDispatchOnce(a!.deps), runDispatchOnce(b!.deps), runDispatchOnce(a!.deps), runDispatchOnce(b!.deps)]);
    const dispatched = passes.flatMap((p) => p.dispatched);
    expect(passes.every((p) => p.failed === 0)).toBe(true);
    expect(dispatched.map((d) => d.taskId).sort()).toEqual([...ids].sort());
    expect(await a!.count('task_dispatches')).toBe(20);
    expect((await a!.deps.tasks.list({ state: 'DOING', limit: 50 })).rows.map((t) => t.version)).toEqual(Array(20).fill(4));
    const kinds = await b!.auditKinds();
    expect(kinds.filter((k) => k === 'dispatch.created')).toHaveLength(20);
    expect(await b!.verify()).toEqual({ ok: true, rows: kinds.length });
    expect(await a!.deps.tasks.dispatchCandidates()).toEqual([]);
  });

  it('10 concurrent creations with one idempotency key over 3 pools make one task; the others replay it', async () => {
    const engines = await replicas('kernel_idem', 3);
    const idem = { key: 'same', requestHash: 'h' };
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => createTask(engines[i % 3]!.deps, 'main', { title: 'once', type: 'BUG' }, idem)));
    expect(new Set(made.map((m) => m.task.id)).size).toBe(1);
    expect(made.filter((m) => !m.replayed)).toHaveLength(1);
    expect(await engines[0]!.count('tasks')).toBe(1);
    await expect(createTask(engines[1]!.deps, 'main', { title: 'other', type: 'BUG' }, { key: 'same', requestHash: 'h2' })).rejects.toMatchObject({ code: 'idempotency_key_reused' });
    expect(await engines[2]!.verify()).toEqual({ ok: true, rows: 1 });
  });

  it('10 concurrent moves with one If-Match over 3 pools: one is made, 9 are 412', async () => {
    const engines = await replicas('kernel_ifmatch', 3);
    const id = await readyTask(engines[0]!.deps);
    const moves = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => transitionTask(engines[i % 3]!.deps, id, 'developer', '"v3"', { to: 'DOING' })));
    expect(moves.filter((m) => m.status === 'fulfilled')).toHaveLength(1);
    for (const m of moves.filter((x) => x.status === 'rejected')) expect((m as PromiseRejectedResult).reason).toMatchObject({ code: 'precondition_failed' });
    expect(await engines[1]!.deps.tasks.find(id)).toMatchObject({ state: 'DOING', version: 4 });
    expect(await engines[2]!.verify()).toEqual({ ok: true, rows: 4 });
  });
});
