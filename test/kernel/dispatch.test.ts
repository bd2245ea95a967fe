import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { openDb } from '../../src/platform/db/open.js';
import { runDispatchOnce, startDispatchLoop } from '../../src/modules/kernel/service/dispatch.js';
import { createTask } from '../../src/modules/kernel/service/create.js';
import { transitionTask } from '../../src/modules/kernel/service/transition.js';
import { sqliteTaskStore } from '../../src/modules/kernel/store.js';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/harness.js';
import { startServeProcess } from '../helpers/process.js';
import { auditVerifyCli } from './helpers.js';

const WORKER = path.join(import.meta.dirname, 'fixtures/dispatch-worker.ts');
const N = 200;
/**
 * WAL with synchronous=NORMAL: a commit survives a process crash (what these tests do) without an
 * fsync per commit, which would make 200 dispatches slow on a shared disk.
 */
const FAST = { BROKER_SQLITE_SYNCHRONOUS: 'NORMAL' };

let broker: TestBroker | null = null;
afterEach(async () => {
  await broker?.stop();
  broker = null;
});

/** Creates `n` READY tasks assigned to developer through the task service, one after the other. */
async function readyTasks(b: TestBroker, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const { task } = await createTask(b.deps, 'main', { title: `race ${i}`, type: 'BUG', assigned_group: 'developer' }, null);
    await transitionTask(b.deps, task.id, 'main', '"v1"', { to: 'TRIAGED' });
    ids.push((await transitionTask(b.deps, task.id, 'main', '"v2"', { to: 'READY' })).id);
  }
  return ids;
}

/** What the database holds after the dispatches: counts that must all equal the task count. */
function tally(b: TestBroker) {
  const q = (sql: string) => (b.deps.db.sqlite.prepare(sql).get() as { n: number }).n;
  return {
    dispatches: q('SELECT count(*) AS n FROM task_dispatches'),
    distinctTasks: q('SELECT count(DISTINCT task_id) AS n FROM task_dispatches'),
    doing: q("SELECT count(*) AS n FROM tasks WHERE state = 'DOING' AND version = 4"),
    transitions: q(`SELECT count(*) AS n FROM gov_activities WHERE kind = 'task.transition' AND actor = 'system' AND json_extract(detail, '$.to') = 'DOING'`),
    dispatchRows: q(`SELECT count(*) AS n FROM gov_activities WHERE kind = 'dispatch.created' AND actor = 'system'`),
  };
}

const all = (n: number) => ({ dispatches: n, distinctTasks: n, doing: n, transitions: n, dispatchRows: n });

/** A worker process on the broker's database file; resolves when it printed `ready`. */
function worker(dbPath: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, dbPath], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, out, err })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => out.includes('ready\n') && resolve());
    void exited.then((r) => reject(new Error(`worker exited before ready: ${r.err}`)));
  });
  return { ready, exited, go: () => child.stdin.end('go\n') };
}

describe('the dispatch loop', () => {
  it('moves READY → DOING and gated REVIEW → APPROVAL once, with audit rows, and leaves the rest alone', async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    const [ready] = await readyTasks(b, 1);
    const { task: gated } = await createTask(b.deps, 'main', { title: 'gated', type: 'SECURITY', assigned_group: 'developer' }, null);
    for (const [to, by, v] of [['TRIAGED', 'main', 1], ['READY', 'main', 2], ['DOING', 'developer', 3], ['REVIEW', 'developer', 4]] as const) {
      await transitionTask(b.deps, gated.id, by, `"v${v}"`, { to });
    }
    const { task: inbox } = await createTask(b.deps, 'main', { title: 'untouched', type: 'BUG', assigned_group: 'developer' }, null);

    const pass = await runDispatchOnce(b.deps);
    expect(pass.examined).toBe(2);
    expect(pass.dispatched.map((d) => [d.taskId, d.kind, d.group, d.targetState, d.dispatchKey])).toEqual([
      [ready, 'execute', 'developer', 'DOING', `${ready}:DOING:3`],
      [gated.id, 'approve', 'security', 'APPROVAL', `${gated.id}:APPROVAL:5`],
    ]);
    const rows = b.deps.db.sqlite.prepare("SELECT actor, kind, subject FROM gov_activities WHERE kind LIKE 'task.%' AND actor = 'system' OR kind LIKE 'dispatch.%' ORDER BY seq").all();
    expect(rows).toEqual([
      { actor: 'system', kind: 'task.transition', subject: ready },
      { actor: 'system', kind: 'dispatch.created', subject: ready },
      { actor: 'system', kind: 'task.transition', subject: gated.id },
      { actor: 'system', kind: 'dispatch.created', subject: gated.id },
    ]);
    expect((await runDispatchOnce(b.deps)).dispatched).toEqual([]);
    expect((b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(inbox.id) as { state: string }).state).toBe('INBOX');
    expect(verifyChain(b.deps.db).ok).toBe(true);
  });

  it('runs at start-up and stops when told', async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    const [id] = await readyTasks(b, 1);
    const stop = startDispatchLoop(b.deps);
    await new Promise((r) => setImmediate(r));
    stop();
    await new Promise((r) => setImmediate(r));
    expect((b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(id) as { state: string }).state).toBe('DOING');
  });

  it('`broker serve` runs the loop at start-up and stops it on SIGTERM', async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    const [id] = await readyTasks(b, 1);
    const serve = await startServeProcess({ BROKER_DATA_DIR: b.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'info' });
    const state = () => (b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(id) as { state: string }).state;
    await vi.waitFor(() => expect(state()).toBe('DOING'), { timeout: 20_000, interval: 50 });
    serve.child.kill('SIGTERM');
    expect(await serve.exited, serve.output()).toBe(0);
    expect(serve.output()).toContain('"msg":"dispatch pass"');
    expect(tally(b)).toEqual(all(1));
  });

  it(`two interleaved loops on two connections over ${N} READY tasks: exactly ${N} dispatches and transitions`, async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    await readyTasks(b, N);
    const other = openDb({ path: b.deps.db.path, synchronous: 'NORMAL' });
    try {
      // The second loop starts once the first has made its first dispatch: started together, both
      // would read the same candidates and the second would trail one task behind, losing each race.
      const first = runDispatchOnce(b.deps);
      await new Promise((r) => setImmediate(r));
      const [one, two] = await Promise.all([first, runDispatchOnce({ ...b.deps, tasks: sqliteTaskStore(other) })]);
      expect(one.examined).toBe(N);
      expect(one.dispatched.length).toBeGreaterThan(0);
      expect(two.dispatched.length).toBeGreaterThan(0);
      expect(one.dispatched.length + two.dispatched.length).toBe(N);
      expect(one.failed + two.failed).toBe(0);
    } finally {
      other.sqlite.close();
    }
    expect(tally(b)).toEqual(all(N));
    expect(verifyChain(b.deps.db)).toEqual({ ok: true, rows: expect.any(Number) });
  });

  it(`two loops in two processes racing over ${N} READY tasks: exactly ${N} dispatches and transitions`, async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    await readyTasks(b, N);
    const workers = [worker(b.deps.db.path), worker(b.deps.db.path)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const results = await Promise.all(workers.map((w) => w.exited));
    const counts = results.map((r) => {
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out.trim().split('\n').at(-1)!) as { dispatched: number; failed: number };
    });
    expect(counts.reduce((s, c) => s + c.dispatched, 0)).toBe(N);
    expect(counts.reduce((s, c) => s + c.failed, 0)).toBe(0);
    expect(tally(b)).toEqual(all(N));
    expect(verifyChain(b.deps.db).ok).toBe(true);
  });

  it('a loop killed in the middle of a dispatch, then a new loop on the same file: no duplicates, nothing lost', async () => {
    broker = await startBroker({ env: FAST });
    const b = broker;
    await readyTasks(b, N);
    const crashAt = 37;
    const w = worker(b.deps.db.path, { CRASH_AT_DISPATCH: String(crashAt) });
    await w.ready;
    w.go();
    const killed = await w.exited;
    expect(killed.signal).toBe('SIGKILL');
    expect(tally(b)).toEqual(all(crashAt - 1));

    const pass = await runDispatchOnce(b.deps);
    expect(pass.dispatched).toHaveLength(N - (crashAt - 1));
    expect(tally(b)).toEqual(all(N));
    expect((await runDispatchOnce(b.deps)).dispatched).toEqual([]);
    expect(verifyChain(b.deps.db).ok).toBe(true);
    expect(await auditVerifyCli(b.dataDir)).toMatch(/^audit chain ok/);
  });
});
