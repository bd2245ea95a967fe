import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/process.js';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { newId } from '../../src/modules/kernel/model.js';
import { runFiles } from '../../src/modules/runner/pack.js';
import { sqliteRunStore, type RunRow } from '../../src/modules/runner/store.js';
import { agentCommand, policiesWith, readyTask, TSX } from './helpers.js';

let broker: TestBroker | null = null;
const serves: ServeProcess[] = [];
afterEach(async () => {
  for (const s of serves.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }
  await broker?.stop();
  broker = null;
});

/** A port free now, for a broker whose runners must know its URL before it starts. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** True when `pid` no longer runs: no such process, or a zombie. */
function gone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('runner: a broker killed with SIGKILL while its agent runs', () => {
  it('does not start the dispatch again: the run is interrupted and audited, the orphan killed, the task READY again and dispatched anew', async () => {
    const port = await freePort();
    const work = tempDir('runner-crash-');
    const spawnLog = path.join(work, 'spawns.log');
    const goFile = path.join(work, 'go');
    const policies = policiesWith({
      runners: { developer: { command: agentCommand(), env: { BROKER_URL: `http://127.0.0.1:${port}`, SPAWN_LOG: spawnLog, AGENT_MODE: 'wait-then-work', GO_FILE: goFile }, timeout_s: 600, concurrency: 1 } },
      interruption: { max: 3, cooldown_s: 0 },
    });
    broker = await startBroker({ listen: false, env: { BROKER_POLICIES_DIR: policies } });
    const b = broker;
    const id = await readyTask(b);
    const env = { BROKER_DATA_DIR: b.dataDir, BROKER_POLICIES_DIR: policies, BROKER_PORT: String(port), BROKER_DISPATCH_INTERVAL_MS: '100', BROKER_LEASE_TTL_MS: '1000' };
    const runs = () => b.deps.db.sqlite.prepare('SELECT id, dispatch_id, status, pid FROM runs WHERE task_id = ? ORDER BY id').all(id) as { id: string; dispatch_id: string; status: string; pid: number | null }[];

    const first = await startServeProcess(env);
    serves.push(first);
    await vi.waitFor(() => expect(runs()[0]?.status).toBe('running'), { timeout: 20_000, interval: 50 });
    await vi.waitFor(() => expect(fs.existsSync(spawnLog)).toBe(true), { timeout: 20_000, interval: 50 });
    const orphan = runs()[0]!.pid!;
    first.child.kill('SIGKILL');
    await first.exited;
    expect(gone(orphan)).toBe(false); // detached: the agent outlived its broker

    // The restart waits out the dead instance's lease, then recovers.
    const second = await startServeProcess(env);
    serves.push(second);
    await vi.waitFor(() => expect(runs()).toHaveLength(2), { timeout: 20_000, interval: 50 });
    expect(runs()[0]!.status).toBe('interrupted');
    expect(gone(orphan)).toBe(true);
    await vi.waitFor(() => expect(runs()[1]!.status).toBe('running'), { timeout: 20_000, interval: 50 });
    fs.writeFileSync(goFile, '');
    await vi.waitFor(() => expect(runs()[1]!.status).toBe('succeeded'), { timeout: 20_000, interval: 50 });

    // Each dispatch started exactly one process; two dispatches, two spawns.
    const spawned = fs.readFileSync(spawnLog, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
    expect(spawned).toEqual(runs().map((r) => r.dispatch_id));
    expect(new Set(spawned).size).toBe(2);
    const task = b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(id) as { state: string };
    expect(task.state).toBe('REVIEW');
    const audit = (b.deps.db.sqlite.prepare('SELECT kind, actor, detail FROM gov_activities WHERE subject = ? ORDER BY seq').all(id) as { kind: string; actor: string; detail: string }[]).map((r) => [r.kind, r.actor, JSON.parse(r.detail) as Record<string, unknown>] as const);
    const interrupted = audit.find(([k]) => k === 'run.interrupted');
    expect(interrupted?.[2]).toMatchObject({ run_id: runs()[0]!.id, was: 'running', pid: orphan });
    expect(audit.some(([k, a, d]) => k === 'task.transition' && a === 'system' && d['from'] === 'DOING' && d['to'] === 'READY')).toBe(true);
  });

  it('leaves the task BLOCKED once it reached the allowed number of interruptions', async () => {
    const port = await freePort();
    const work = tempDir('runner-crash-');
    const policies = policiesWith({
      runners: { developer: { command: agentCommand(), env: { BROKER_URL: `http://127.0.0.1:${port}`, AGENT_MODE: 'wait-then-work', GO_FILE: path.join(work, 'never') }, timeout_s: 600, concurrency: 1 } },
      interruption: { max: 1, cooldown_s: 0 },
    });
    broker = await startBroker({ listen: false, env: { BROKER_POLICIES_DIR: policies } });
    const b = broker;
    const id = await readyTask(b);
    const env = { BROKER_DATA_DIR: b.dataDir, BROKER_POLICIES_DIR: policies, BROKER_PORT: String(port), BROKER_DISPATCH_INTERVAL_MS: '100', BROKER_LEASE_TTL_MS: '1000' };
    const status = () => (b.deps.db.sqlite.prepare('SELECT status FROM runs WHERE task_id = ?').all(id) as { status: string }[]).map((r) => r.status);
    const first = await startServeProcess(env);
    serves.push(first);
    await vi.waitFor(() => expect(status()).toEqual(['running']), { timeout: 20_000, interval: 50 });
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startServeProcess(env);
    serves.push(second);
    const task = () => b.deps.db.sqlite.prepare('SELECT state, blocked_from, blocked_reason FROM tasks WHERE id = ?').get(id) as Record<string, string>;
    await vi.waitFor(() => expect(task()['state']).toBe('BLOCKED'), { timeout: 20_000, interval: 50 });
    expect(task()).toMatchObject({ blocked_from: 'DOING' });
    expect(task()['blocked_reason']).toContain('runner interrupted');
    expect(status()).toEqual(['interrupted']);
  });
});

/**
 * The state a broker SIGKILLed between the claim and the spawn leaves: the kernel's dispatch
 * (task DOING), and its run row `claimed` with its `run.claimed` audit row, written by the
 * runner's own store call, with no pid and no process started. No broker serves at this point.
 */
async function claimedNotSpawned(b: TestBroker, id: string): Promise<{ run: RunRow; dispatchId: string }> {
  await runDispatchOnce({ ...b.deps, wip: b.deps.runner.wipLimits });
  const d = (await b.deps.stores.tasks.dispatchesOf(id)).at(-1)!;
  expect(d.status).toBe('pending');
  const nowMs = b.clock.now();
  const runId = newId(nowMs);
  const files = runFiles(b.dataDir, runId, d.group);
  const run = await sqliteRunStore(b.deps.db).claim(
    { id: runId, dispatchKey: d.dispatchKey, dispatchId: d.id, taskId: d.taskId, group: d.group, status: 'claimed', contextFile: files.contextFile, createdAt: nowMs },
    { actor: 'system', kind: 'run.claimed', subject: d.taskId, detail: { run_id: runId, dispatch_id: d.id, dispatch_key: d.dispatchKey, group: d.group } },
  );
  expect(run).toMatchObject({ status: 'claimed', pid: null });
  return { run: run!, dispatchId: d.id };
}

describe('runner: a broker killed with SIGKILL between the claim and the spawn', () => {
  it('never starts the claimed dispatch: the run is interrupted and audited, and after the cool-down a new dispatch runs exactly once to REVIEW', async () => {
    const port = await freePort();
    const work = tempDir('runner-crash-');
    const spawnLog = path.join(work, 'spawns.log');
    const cooldownS = 1;
    const policies = policiesWith({
      runners: { developer: { command: agentCommand(), env: { BROKER_URL: `http://127.0.0.1:${port}`, SPAWN_LOG: spawnLog }, timeout_s: 600, concurrency: 1 } },
      interruption: { max: 3, cooldown_s: cooldownS },
    });
    broker = await startBroker({ listen: false, env: { BROKER_POLICIES_DIR: policies } });
    const b = broker;
    const id = await readyTask(b);
    const claimed = await claimedNotSpawned(b, id);
    expect((b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(id) as { state: string }).state).toBe('DOING');
    expect(fs.existsSync(spawnLog)).toBe(false);

    const env = { BROKER_DATA_DIR: b.dataDir, BROKER_POLICIES_DIR: policies, BROKER_PORT: String(port), BROKER_DISPATCH_INTERVAL_MS: '100', BROKER_LEASE_TTL_MS: '1000' };
    const runs = () => b.deps.db.sqlite.prepare('SELECT id, dispatch_id, dispatch_key, status, pid, created_at, finished_at FROM runs WHERE task_id = ? ORDER BY id').all(id) as { id: string; dispatch_id: string; dispatch_key: string; status: string; pid: number | null; created_at: number; finished_at: number | null }[];
    const task = () => b.deps.db.sqlite.prepare('SELECT state FROM tasks WHERE id = ?').get(id) as { state: string };
    const serve = await startServeProcess(env);
    serves.push(serve);
    await vi.waitFor(() => expect(task().state).toBe('REVIEW'), { timeout: 20_000, interval: 50 });
    await vi.waitFor(() => expect(runs()[1]?.status).toBe('succeeded'), { timeout: 20_000, interval: 50 });

    const [old, fresh, ...more] = runs();
    expect(more).toEqual([]);
    expect(old).toMatchObject({ id: claimed.run.id, dispatch_id: claimed.dispatchId, status: 'interrupted', pid: null });
    expect(fresh!.dispatch_id).not.toBe(claimed.dispatchId);
    expect(fresh!.dispatch_key).not.toBe(old!.dispatch_key);
    // The new run was claimed only once the interruption's cool-down had passed (on the broker's clock).
    expect(fresh!.created_at - old!.finished_at!).toBeGreaterThanOrEqual(cooldownS * 1000);

    // Exactly one process was ever started, for the new dispatch; none for the claimed one.
    const spawned = fs.readFileSync(spawnLog, 'utf8').trim().split('\n').map((l) => l.split(' '));
    expect(spawned).toEqual([[fresh!.dispatch_id, fresh!.id]]);

    const audit = (b.deps.db.sqlite.prepare('SELECT kind, actor, detail FROM gov_activities WHERE subject = ? ORDER BY seq').all(id) as { kind: string; actor: string; detail: string }[]).map((r) => [r.kind, r.actor, JSON.parse(r.detail) as Record<string, unknown>] as const);
    const ofOld = audit.filter(([, , d]) => d['run_id'] === old!.id).map(([k, , d]) => (k === 'task.transition' ? `${k} ${String(d['from'])}>${String(d['to'])}` : k));
    expect(ofOld).toEqual(['run.claimed', 'run.interrupted', 'task.transition DOING>READY']);
    expect(audit.find(([k]) => k === 'run.interrupted')?.[2]).toMatchObject({ run_id: old!.id, dispatch_id: claimed.dispatchId, was: 'claimed', pid: null });
    expect(audit.filter(([k]) => k === 'run.started').map(([, , d]) => d['run_id'])).toEqual([fresh!.id]);
  });

  it('leaves the task BLOCKED, with no process started, when that interruption reaches the allowed number', async () => {
    const port = await freePort();
    const work = tempDir('runner-crash-');
    const spawnLog = path.join(work, 'spawns.log');
    const policies = policiesWith({
      runners: { developer: { command: agentCommand(), env: { BROKER_URL: `http://127.0.0.1:${port}`, SPAWN_LOG: spawnLog }, timeout_s: 600, concurrency: 1 } },
      interruption: { max: 1, cooldown_s: 0 },
    });
    broker = await startBroker({ listen: false, env: { BROKER_POLICIES_DIR: policies } });
    const b = broker;
    const id = await readyTask(b);
    const claimed = await claimedNotSpawned(b, id);
    const env = { BROKER_DATA_DIR: b.dataDir, BROKER_POLICIES_DIR: policies, BROKER_PORT: String(port), BROKER_DISPATCH_INTERVAL_MS: '100', BROKER_LEASE_TTL_MS: '1000' };
    const serve = await startServeProcess(env);
    serves.push(serve);
    const task = () => b.deps.db.sqlite.prepare('SELECT state, blocked_from, blocked_reason FROM tasks WHERE id = ?').get(id) as Record<string, string>;
    await vi.waitFor(() => expect(task()['state']).toBe('BLOCKED'), { timeout: 20_000, interval: 50 });
    expect(task()).toMatchObject({ blocked_from: 'DOING' });
    expect(task()['blocked_reason']).toContain('runner interrupted (1 of 1 allowed)');
    const runs = b.deps.db.sqlite.prepare('SELECT id, status, pid FROM runs WHERE task_id = ?').all(id);
    expect(runs).toEqual([{ id: claimed.run.id, status: 'interrupted', pid: null }]);
    // Stop the broker so that nothing can still be spawning, then check nothing was.
    serve.child.kill('SIGTERM');
    await serve.exited;
    expect(fs.existsSync(spawnLog)).toBe(false);
    const kinds = (b.deps.db.sqlite.prepare("SELECT kind FROM gov_activities WHERE subject = ? AND kind LIKE 'run.%' ORDER BY seq").all(id) as { kind: string }[]).map((r) => r.kind);
    expect(kinds).toEqual(['run.claimed', 'run.interrupted']);
  });
});

describe('runner: a broker killed after the spawn, before the pid is recorded', () => {
  /** Starts the broker stand-in (fixtures/gated-parent.ts) in `mode`; resolves with it and the gate's pid. */
  async function parent(mode: 'hold' | 'go', marker: string) {
    const script = path.join(REPO_ROOT, 'test/runner/fixtures/gated-parent.ts');
    const child = spawn(process.execPath, ['--import', TSX, script, mode, process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        if (out.includes('\n')) resolve(Number(out.split('\n')[0]));
      });
      child.once('exit', () => reject(new Error(`gated-parent exited early: ${out}`)));
    });
    return { child, exited, pid };
  }

  it('never starts the command: the gate exits when its broker dies, so no unrecorded process is left to recovery', async () => {
    const marker = path.join(tempDir('runner-gate-'), 'ran');
    const p = await parent('hold', marker);
    expect(gone(p.pid)).toBe(false); // spawned: the gate waits for its pid to be recorded
    p.child.kill('SIGKILL');
    await p.exited;
    await vi.waitFor(() => expect(gone(p.pid)).toBe(true), { timeout: 20_000, interval: 50 });
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('starts the command once the gate opens (control)', async () => {
    const marker = path.join(tempDir('runner-gate-'), 'ran');
    const p = await parent('go', marker);
    await vi.waitFor(() => expect(fs.existsSync(marker)).toBe(true), { timeout: 20_000, interval: 50 });
    p.child.kill('SIGKILL');
    await p.exited;
  });
});
