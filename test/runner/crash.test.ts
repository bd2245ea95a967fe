import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { startServeProcess, type ServeProcess } from '../helpers/process.js';
import { agentCommand, policiesWith, readyTask } from './helpers.js';

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
