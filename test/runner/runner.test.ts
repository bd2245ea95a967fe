import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRunners } from '../../src/modules/runner/policy.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { agentCommand, pass, policiesWith, readyTask } from './helpers.js';

let broker: TestBroker | null = null;
afterEach(async () => {
  await broker?.deps.runner.idle();
  await broker?.stop();
  broker = null;
});

/** A listening broker whose developer and security groups run the stand-in agent with `env`. */
async function brokerWith(env: Record<string, string> = {}, spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<TestBroker> {
  const spawnLog = path.join(tempDir('runner-log-'), 'spawns.log');
  // BROKER_URL is filled in once the port is known: the runner reads its policy at each start.
  const runner = (url: string) => ({ command: agentCommand(), env: { BROKER_URL: url, SPAWN_LOG: spawnLog, ...env }, timeout_s: 60, concurrency: 4, ...spec });
  const dir = policiesWith({ runners: { developer: runner('http://127.0.0.1:1'), security: runner('http://127.0.0.1:1') }, ...extra });
  const b = await startBroker({ env: { BROKER_POLICIES_DIR: dir } });
  // Point the runners at the real port now it is known.
  const policy = (b.deps.runner as unknown as { deps: { policy: { runners: Map<string, { env: Record<string, string> }> } } }).deps.policy;
  for (const r of policy.runners.values()) r.env['BROKER_URL'] = b.url;
  Object.assign(b, { spawnLog });
  return b;
}

/** True when `pid` no longer runs: no such process, or a zombie (`Z` in /proc/<pid>/stat). */
function gone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function runsOf(b: TestBroker, taskId: string) {
  return b.deps.db.sqlite.prepare('SELECT * FROM runs WHERE task_id = ? ORDER BY id').all(taskId) as Record<string, unknown>[];
}

describe('runner: dispatch starts the agent', () => {
  it('takes a task READY → DOING → REVIEW through a process the broker started, then starts the approver for the gate', async () => {
    broker = await brokerWith();
    const id = await readyTask(broker, { type: 'SECURITY' });
    await pass(broker); // READY → DOING, developer's runner spawned
    await broker.deps.runner.idle();
    expect((await broker.deps.tasks.find(id))!.state).toBe('REVIEW');
    const [run] = runsOf(broker, id);
    expect(run).toMatchObject({ group: 'developer', status: 'succeeded', exit_code: 0 });
    expect(String(run!['output_tail'])).toContain('agent developer execute: 200');

    await pass(broker); // REVIEW → APPROVAL, security's runner approves
    await broker.deps.runner.idle();
    const task = (await broker.deps.tasks.find(id))!;
    expect(task).toMatchObject({ state: 'APPROVAL', gateStatus: 'approved' });
    const runs = runsOf(broker, id);
    expect(runs.map((r) => [r['group'], r['status']])).toEqual([
      ['developer', 'succeeded'],
      ['security', 'succeeded'],
    ]);
    const kinds = (broker.deps.db.sqlite.prepare("SELECT kind FROM gov_activities WHERE subject = ? AND kind LIKE 'run.%' ORDER BY seq").all(id) as { kind: string }[]).map((r) => r.kind);
    expect(kinds).toEqual(['run.claimed', 'run.started', 'run.finished', 'run.claimed', 'run.started', 'run.finished']);
    // The pack holds the task and its history, and no secret.
    const pack = fs.readFileSync(String(runs[1]!['context_file']), 'utf8');
    expect(JSON.parse(pack)).toMatchObject({ format: 'nanoclaw.context/1', task: { id, state: 'APPROVAL' }, dispatch: { kind: 'approve', group: 'security' } });
    expect(pack).not.toContain(broker.deps.keys.current('security').secret.toString('base64url'));
    // A second pass claims nothing again.
    await pass(broker);
    expect(runsOf(broker, id)).toHaveLength(2);

    // The runs are on the task's context, and the metrics count them.
    const ctx = await broker.client('main').get(`/v1/tasks/${id}/context`);
    expect(ctx.body.runs.map((r: { group: string; status: string }) => [r.group, r.status])).toEqual([
      ['developer', 'succeeded'],
      ['security', 'succeeded'],
    ]);
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/broker_runs\{state="running"\} 0/);

    // `broker runs list|show|cancel` read the same records.
    const env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: broker.deps.config.policiesDir, BROKER_LOG_LEVEL: 'silent' };
    const list = await runCli(['runs', 'list', '--task', id], env);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { data: { id: string; status: string; group: string; exit_code: number; duration_ms: number }[] };
    expect(listed.data.map((r) => [r.group, r.status, r.exit_code])).toEqual([
      ['developer', 'succeeded', 0],
      ['security', 'succeeded', 0],
    ]);
    const show = await runCli(['runs', 'show', listed.data[0]!.id], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: listed.data[0]!.id, task_id: id, status: 'succeeded' });
    const cancel = await runCli(['runs', 'cancel', listed.data[0]!.id], env);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain('succeeded');
  });

  it('records a failing command as failed, with its exit status and output', async () => {
    broker = await brokerWith({ AGENT_MODE: 'fail' });
    const id = await readyTask(broker);
    await pass(broker);
    await broker.deps.runner.idle();
    expect(runsOf(broker, id)[0]).toMatchObject({ status: 'failed', exit_code: 3 });
    expect(String(runsOf(broker, id)[0]!['output_tail'])).toContain('something went wrong');
    expect((await broker.deps.tasks.find(id))!.state).toBe('DOING');
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/broker_runs_failed_total\{group="developer",status="failed"\} 1/);
  });

  it('records a command that cannot start as failed', async () => {
    broker = await brokerWith({}, { command: ['/nonexistent/agent-binary', '{task_id}'] });
    const id = await readyTask(broker);
    await pass(broker);
    await broker.deps.runner.idle();
    expect(runsOf(broker, id)[0]).toMatchObject({ status: 'failed', exit_code: 127 });
    expect(String(runsOf(broker, id)[0]!['output_tail'])).toMatch(/\/nonexistent\/agent-binary: not found/);
  });

  it('passes an argument with shell metacharacters verbatim', async () => {
    const argvFile = path.join(tempDir('runner-argv-'), 'argv.json');
    const nasty = `$(touch /tmp/pwned-{task_id}); rm -rf / && echo "x" | cat \`id\` > *`;
    broker = await brokerWith({ AGENT_MODE: 'argv', ARGV_FILE: argvFile }, { command: agentCommand(nasty, 'two words') });
    const id = await readyTask(broker);
    await pass(broker);
    await broker.deps.runner.idle();
    const argv = JSON.parse(fs.readFileSync(argvFile, 'utf8')) as string[];
    expect(argv.slice(2)).toEqual([nasty.replace('{task_id}', id), 'two words']);
    expect(fs.existsSync(`/tmp/pwned-${id}`)).toBe(false);
  });

  it('kills a runner over its timeout with its whole process group', async () => {
    const pidFile = path.join(tempDir('runner-pid-'), 'child.pid');
    broker = await brokerWith({ AGENT_MODE: 'hang', CHILD_PID_FILE: pidFile }, { timeout_s: 1 });
    const id = await readyTask(broker);
    await pass(broker);
    await broker.deps.runner.idle();
    expect(runsOf(broker, id)[0]).toMatchObject({ status: 'timed_out', signal: 'SIGKILL' });
    const child = Number(fs.readFileSync(pidFile, 'utf8'));
    // The grandchild (`sleep`) was in the group: it is gone too (no process, or a zombie left for
    // an init that does not reap).
    expect(gone(child)).toBe(true);
  });
});

describe('runner: WIP limits', () => {
  it('keeps at most 2 DOING per group and 8 in total under 20 READY tasks, highest priority then oldest first, and fills a freed slot', async () => {
    broker = await brokerWith({ AGENT_MODE: 'fail' }, {}, {});
    const b = broker;
    const ids: { id: string; priority: string; group: string }[] = [];
    const groups = ['developer', 'security', 'main'];
    for (let i = 0; i < 20; i += 1) {
      const priority = i % 4 === 0 ? 'P0' : 'P2';
      const group = groups[i % 3]!;
      ids.push({ id: await readyTask(b, { priority: priority as 'P0' | 'P2', group, title: `wip ${i}` }), priority, group });
    }
    await pass(b);
    await b.deps.runner.idle();
    const doing = async () => (await b.deps.tasks.list({ state: 'DOING', limit: 200 })).rows;
    let now = await doing();
    // Each group at 2: 6 in total (under 8).
    for (const g of groups) expect(now.filter((t) => t.assignedGroup === g)).toHaveLength(2);
    // Within each group, the P0 tasks went first, oldest first.
    for (const g of groups) {
      const expected = ids.filter((t) => t.group === g).sort((a, z) => a.priority.localeCompare(z.priority) || a.id.localeCompare(z.id)).slice(0, 2).map((t) => t.id);
      expect(now.filter((t) => t.assignedGroup === g).map((t) => t.id).sort()).toEqual(expected.sort());
    }
    // A second pass changes nothing; a freed slot is filled by the next in line.
    await pass(b);
    expect(await doing()).toHaveLength(6);
    const freed = now.find((t) => t.assignedGroup === 'developer')!;
    await b.deps.tasks.change(freed.id, (t) => ({ nowMs: b.clock.now(), patch: { state: 'REVIEW' }, activities: [{ actor: 'developer', kind: 'test.freed', subject: t!.id }] }));
    await pass(b);
    now = await doing();
    expect(now.filter((t) => t.assignedGroup === 'developer')).toHaveLength(2);
    expect(now.map((t) => t.id)).not.toContain(freed.id);
  });

  it('caps the total at 8', async () => {
    broker = await brokerWith({ AGENT_MODE: 'fail' }, {}, { wip: { per_group: 5, total: 8 } });
    for (let i = 0; i < 20; i += 1) await readyTask(broker, { group: ['developer', 'security', 'main'][i % 3]! });
    await pass(broker);
    await broker.deps.runner.idle();
    expect((await broker.deps.tasks.list({ state: 'DOING', limit: 200 })).rows).toHaveLength(8);
  });
});

describe('runners.json', () => {
  it('is validated: unknown placeholder, shell string, unknown field', () => {
    expect(() => loadRunners(policiesWith({ runners: { developer: { command: ['x', '{password}'] } } }))).toThrow(/unknown placeholder \{password\}/);
    expect(() => loadRunners(policiesWith({ runners: { developer: { command: 'docker run x' } } }))).toThrow(/runners\.developer\.command/);
    expect(() => loadRunners(policiesWith({ runners: { developer: { command: ['x'], shell: true } } }))).toThrow(/runners\.json/);
    const example = tempDir('broker-policies-');
    fs.copyFileSync(path.join(REPO_ROOT, 'policies/runners.example.json'), path.join(example, 'runners.json'));
    expect([...loadRunners(example).runners.keys()]).toEqual(['developer', 'security', 'main']);
    const absent = tempDir('broker-policies-');
    expect(loadRunners(absent).configured).toBe(false);
  });
});
