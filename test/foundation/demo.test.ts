/**
 * `npm run demo` as a newcomer runs it: the compiled `dist/scripts/demo.js` (built by the global
 * setup, as `npm run demo` builds it first) as a real process, with `--json`. Every step must
 * answer what the story promises (checked here against this file's own table, not only the
 * demo's verdict), the process must exit 0, and it must leave nothing behind: no broker process,
 * no temporary directory. Interrupted, it still cleans up.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/harness.js';

const DEMO = path.join(REPO_ROOT, 'dist/scripts/demo.js');

/** One JSON line the demo printed. */
type Event = Record<string, any> & { event: 'start' | 'step' | 'check' | 'end' };

/** A finished demo run. */
interface DemoRun {
  code: number | null;
  events: Event[];
  stderr: string;
}

/**
 * Runs the demo with `--json` and collects its events.
 * @param onEvent sees each event as it arrives, with the child (e.g. to interrupt it).
 */
function runDemo(onEvent: (e: Event, kill: (signal: NodeJS.Signals) => void) => void = () => {}): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('BROKER_') || k.startsWith('GITHUB_')) delete env[k];
    const child = spawn(process.execPath, [DEMO, '--json'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: Event[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const e = JSON.parse(line) as Event;
      events.push(e);
      onEvent(e, (signal) => child.kill(signal));
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, events, stderr }));
  });
}

/** Whether a process with this pid still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Step, HTTP status (or CLI exit code; null for neither), verdict and code of every check, in order. */
const STORY: [number, number | null, string, string | null][] = [
  [0, 0, 'ok', null], // broker token --role operator
  [0, 0, 'ok', null], // secrets export main
  [0, 0, 'ok', null], // secrets export developer
  [1, 201, 'active', null], // developer L1
  [2, 200, 'allowed', null], // get_repo
  [3, 201, 'active', null], // developer L2, comment_issue only
  [3, 201, 'INBOX', null], // task created
  [3, 200, 'TRIAGED', null],
  [3, 200, 'READY', null],
  [3, 200, 'DOING', null], // by the dispatch loop
  [3, 200, 'acked', null],
  [3, 200, 'allowed', null], // comment_issue with task_id
  [4, 403, 'denied', 'task_required'],
  [4, 403, 'denied', 'resource_out_of_scope'],
  [4, 403, 'denied', 'insufficient_level'],
  [5, 201, 'pending_approval', null], // main L3
  [5, 403, 'denied', 'approval_pending'],
  [5, 0, 'ok', null], // approvers keygen sam
  [5, 0, 'ok', null], // approvers add sam
  [5, 0, 'ok', null], // approvers keygen raj
  [5, 0, 'ok', null], // approvers add raj
  [5, 200, 'pending_approval', null], // GET the grant
  [5, 0, 'ok', null], // sam signs offline
  [5, 0, 'ok', null], // raj signs offline
  [5, 200, 'recorded', null],
  [5, 200, 'activated', null],
  [5, 200, 'allowed', null], // merge_pull under L3
  [6, 0, 'ok', null], // broker audit verify
  [6, null, 'ok', null], // every recorded GitHub request replayed
];

describe('npm run demo', () => {
  it('plays the six steps, each answering as expected, exits 0 and leaves nothing behind', async () => {
    const run = await runDemo();
    const start = run.events.find((e) => e.event === 'start');
    const end = run.events.at(-1);
    expect(run.code, run.stderr).toBe(0);
    expect(start).toMatchObject({ broker: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), github: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });

    const checks = run.events.filter((e) => e.event === 'check');
    expect(checks.map((c) => [c.step, c.status, c.verdict, c.code])).toEqual(STORY);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(run.events.filter((e) => e.event === 'step').map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);

    // What each answer said, beyond its status.
    const [read, write] = checks.filter((c) => c.verdict === 'allowed');
    expect(read!.note).toContain('octokit-fixture-org/hello-world');
    expect(write!.note).toMatch(/^call succeeded: comment 1000 /);
    expect(checks.find((c) => c.verdict === 'activated')!.note).toBe('grant active, 2 approval(s)');
    expect(checks.at(-2)!.note).toMatch(/^audit chain ok: \d+ rows verified/);

    expect(end).toEqual({ event: 'end', ok: true, error: null, cleaned: true, checks: STORY.length, steps: [1, 2, 3, 4, 5, 6] });
    expect(fs.existsSync(start!.temp_dir)).toBe(false);
    expect(alive(start!.broker_pid)).toBe(false);
  }, 180_000);

  it('interrupted, exits non-zero and still stops the broker and removes its directory', async () => {
    let interrupted = false;
    const run = await runDemo((e, kill) => {
      if (e.event === 'check' && e.step === 2 && !interrupted) {
        interrupted = true;
        kill('SIGINT');
      }
    });
    const start = run.events.find((e) => e.event === 'start')!;
    expect(interrupted).toBe(true);
    expect(run.code).toBe(130);
    expect(run.events.at(-1)).toMatchObject({ event: 'end', ok: false, error: 'interrupted by SIGINT', cleaned: true });
    expect(fs.existsSync(start.temp_dir)).toBe(false);
    expect(alive(start.broker_pid)).toBe(false);
  }, 180_000);
});
