import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startBroker, type TestBroker } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';
import { Kernel, type Seen } from './helpers.js';

const run = promisify(execFile);

let broker: TestBroker;
let ready: Seen;
beforeAll(async () => {
  broker = await startBroker();
  const k = new Kernel(broker);
  ready = await k.taskIn('READY', { title: 'cli-ready', type: 'OPS' });
  await k.taskIn('INBOX', { title: 'cli-inbox', type: 'OPS' });
});
afterAll(() => broker.stop());

/** Runs `bin/broker.js tasks <args>` on the test broker's data directory. */
function tasksCli(...args: string[]) {
  return run(process.execPath, [BIN, 'tasks', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: `${REPO_ROOT}/policies`, BROKER_LOG_LEVEL: 'error' },
  });
}

describe('broker tasks', () => {
  it('lists tasks with filters, as JSON', async () => {
    const { stdout } = await tasksCli('list', '--state', 'READY', '--group', 'developer', '--type', 'OPS');
    const page = JSON.parse(stdout) as { data: { id: string; title: string }[]; has_more: boolean };
    expect(page.data.map((t) => t.title)).toEqual(['cli-ready']);
    expect(page.has_more).toBe(false);
  });

  it('shows one task with its activity, and exits 1 on an unknown task', async () => {
    const { stdout } = await tasksCli('show', ready.id);
    const shown = JSON.parse(stdout) as { task: { id: string; state: string }; activity: { kind: string; actor: string }[]; gate_decisions: unknown[]; dispatches: unknown[] };
    expect(shown.task).toMatchObject({ id: ready.id, state: 'READY' });
    expect(shown.activity.map((a) => `${a.kind}/${a.actor}`)).toEqual(['task.created/main', 'task.transition/main', 'task.transition/main']);
    expect(shown).toMatchObject({ gate_decisions: [], dispatches: [] });

    await expect(tasksCli('show', '01ARZ3NDEKTSV4RRFFQ69G5FAV')).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('No task 01ARZ3NDEKTSV4RRFFQ69G5FAV') });
  });
});
