/**
 * The runner: starts an agent process for each new dispatch of a group that has a runner in
 * `policies/runners.json`, records how it ended, and recovers the runs a stopped broker left.
 *
 * Exactly once: a dispatch's run row (`UNIQUE(dispatch_key)`, status `claimed`) is committed with
 * its `run.claimed` audit row BEFORE the process is spawned; a dispatch whose key has a row is never
 * started again, whether this process, a restart or another broker claimed it.
 *
 * Crash safety: at start ({@link Runner.recover}) every run still `claimed` or `running` belongs to
 * a broker that stopped without finishing it. Each is marked `interrupted` (audited
 * `run.interrupted`), its process group is killed when its pid was recorded, and the interruption
 * policy applies to its task (docs/runner.md): fewer than `interruption.max` interrupted runs of the
 * task, it goes back (DOING → READY, APPROVAL → REVIEW) and is dispatched again, under a new key,
 * once `interruption.cooldown_s` has passed; at `max`, it goes to BLOCKED for `main` to look at.
 * Both moves are made by `system` in the kernel's store, with a `task.transition` audit row.
 *
 * Processes are spawned with an argument array, behind a gate (./spawn.ts) that starts the command
 * only once its pid is committed on the run, in their own process group, so a timeout, a cancel or
 * a recovery kills the whole group (`kill(-pid)`), and no command runs without its pid recorded.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../platform/clock.js';
import { redactString } from '../../platform/audit/redact.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { GroupKey } from '../identity/keys.js';
import { newId, type DispatchRow } from '../kernel/model.js';
import type { TaskStore } from '../kernel/store.js';
import { ackDispatch } from '../kernel/service/dispatch.js';
import { runFiles, writePack, type PackSources } from './pack.js';
import { openGate, spawnGated } from './spawn.js';
import { fill, type RunnersPolicy, type RunnerSpec } from './policy.js';
import type { RunStatus } from './schema.js';
import { ACTIVE, type RunRow, type RunStore } from './store.js';

/** Lines of output kept on a run (stdout and stderr interleaved, redacted). */
export const TAIL_LINES = 40;

/** What the runner works with. */
export interface RunnerDeps {
  runs: RunStore;
  tasks: TaskStore;
  clock: Clock;
  logger: Logger;
  keys: { current(group: string): GroupKey };
  policy: RunnersPolicy;
  /** `dataDir`: where packs and secret files go; `ipcDir`: the root of the groups' IPC directories (`{ipc_dir}` = `<ipcDir>/<group>`, or empty). */
  config: { dataDir: string; ipcDir: string | null };
  sources: PackSources;
  /** Registry for the `broker_runs` gauge and `broker_runs_failed_total` counter; none in tools. */
  registry?: Registry;
}

interface Live {
  group: string;
  pid: number;
  cancelled: boolean;
  timedOut: boolean;
}

/** The runner service; one per serving process. */
export class Runner {
  private readonly live = new Map<string, Live>();
  private queued = 0;
  private readonly failed?: Counter<'group' | 'status'>;
  private readonly settled = new Set<Promise<void>>();

  constructor(private readonly deps: RunnerDeps) {
    if (deps.registry) {
      const self = this;
      new Gauge({
        name: 'broker_runs',
        help: 'Runner processes: running now, and dispatches queued for a runner slot',
        labelNames: ['state'],
        registers: [deps.registry],
        collect() {
          this.set({ state: 'running' }, self.live.size);
          this.set({ state: 'queued' }, self.queued);
        },
      });
      this.failed = new Counter({ name: 'broker_runs_failed_total', help: 'Runs that ended failed, timed_out or interrupted', labelNames: ['group', 'status'], registers: [deps.registry] });
    }
  }

  /**
   * The dispatch loop's work-in-progress limits (tasks in DOING per group and in total), or
   * undefined when `policies/runners.json` is absent (no limit, as before runners existed).
   */
  get wipLimits(): { perGroup: number; total: number } | undefined {
    return this.deps.policy.configured ? this.deps.policy.wip : undefined;
  }

  /** Runs in progress in this process. */
  get running(): number {
    return this.live.size;
  }

  /** Resolves once every process this runner started has ended and been recorded. */
  async idle(): Promise<void> {
    while (this.settled.size > 0) await Promise.all([...this.settled]);
  }

  /**
   * Recovers the runs a stopped broker left `claimed` or `running` (see the module comment).
   * Call once at start, before {@link tick}.
   * @returns the runs marked `interrupted`.
   */
  async recover(): Promise<RunRow[]> {
    const out: RunRow[] = [];
    for (const run of await this.deps.runs.withStatus(ACTIVE)) {
      if (this.live.has(run.id)) continue;
      if (run.pid !== null) killGroup(run.pid);
      const nowMs = this.deps.clock.now();
      const done = await this.deps.runs.update(run.id, ACTIVE, { status: 'interrupted', finishedAt: nowMs }, [
        { actor: 'system', kind: 'run.interrupted', subject: run.taskId, detail: { run_id: run.id, dispatch_id: run.dispatchId, dispatch_key: run.dispatchKey, group: run.group, was: run.status, pid: run.pid } },
      ], nowMs);
      if (!done) continue;
      this.failed?.inc({ group: run.group, status: 'interrupted' });
      out.push(done);
      await this.applyInterruptionPolicy(done);
    }
    return out;
  }

  private async applyInterruptionPolicy(run: RunRow): Promise<void> {
    const interrupted = (await this.deps.runs.ofTask(run.taskId)).filter((r) => r.status === 'interrupted').length;
    const { max } = this.deps.policy.interruption;
    const dispatch = (await this.deps.tasks.dispatchesOf(run.taskId)).find((d) => d.id === run.dispatchId);
    if (!dispatch) return;
    await this.deps.tasks.change(run.taskId, (task) => {
      // Only the move the dispatch made is undone: a task the agent already moved on is left alone.
      if (!task || task.state !== dispatch.targetState || task.version !== dispatch.taskVersion + 1) return null;
      const nowMs = this.deps.clock.now();
      const from = task.state;
      const reason = `runner interrupted (${interrupted} of ${max} allowed)`;
      if (interrupted >= max) {
        return {
          nowMs,
          patch: { state: 'BLOCKED', blockedFrom: from, blockedReason: `${reason}; unblock to dispatch again` },
          activities: [{ actor: 'system', kind: 'task.transition', subject: task.id, detail: { from, to: 'BLOCKED', version: task.version + 1, reason, run_id: run.id } }],
        };
      }
      const to = from === 'APPROVAL' ? 'REVIEW' : 'READY';
      return {
        nowMs,
        patch: { state: to },
        activities: [{ actor: 'system', kind: 'task.transition', subject: task.id, detail: { from, to, version: task.version + 1, reason, run_id: run.id } }],
      };
    });
  }

  /**
   * One pass: for each group with a runner, claims and starts its pending dispatches that have no
   * run yet, oldest first, up to the group's `concurrency`; tasks in their interruption cool-down
   * wait. Errors are logged; the next pass retries what did not start.
   */
  async tick(): Promise<void> {
    let queued = 0;
    for (const [group, spec] of this.deps.policy.runners) {
      const page = await this.deps.tasks.listDispatches({ group, status: 'pending', limit: 200 });
      const taken = await this.deps.runs.claimedKeys(page.rows.map((d) => d.dispatchKey));
      const fresh = page.rows.filter((d) => !taken.has(d.dispatchKey));
      for (const d of fresh) {
        const busy = [...this.live.values()].filter((l) => l.group === group).length;
        if (busy >= spec.concurrency || (await this.coolingDown(d.taskId))) {
          queued += 1;
          continue;
        }
        try {
          await this.start(d, spec);
        } catch (err) {
          this.deps.logger.error({ dispatch_id: d.id, err: err instanceof Error ? err.message : err }, 'runner start failed');
        }
      }
    }
    this.queued = queued;
  }

  private async coolingDown(taskId: string): Promise<boolean> {
    const cooldownMs = this.deps.policy.interruption.cooldownS * 1000;
    const now = this.deps.clock.now();
    return (await this.deps.runs.ofTask(taskId)).some((r) => r.status === 'interrupted' && r.finishedAt !== null && now - r.finishedAt < cooldownMs);
  }

  /** Claims `d` (committed), writes its pack, spawns its command, acks the dispatch as its group. */
  private async start(d: DispatchRow, spec: RunnerSpec): Promise<void> {
    const nowMs = this.deps.clock.now();
    const id = newId(nowMs);
    const files = runFiles(this.deps.config.dataDir, id, d.group);
    const run = await this.deps.runs.claim(
      { id, dispatchKey: d.dispatchKey, dispatchId: d.id, taskId: d.taskId, group: d.group, status: 'claimed', contextFile: files.contextFile, createdAt: nowMs },
      { actor: 'system', kind: 'run.claimed', subject: d.taskId, detail: { run_id: id, dispatch_id: d.id, dispatch_key: d.dispatchKey, group: d.group } },
    );
    if (!run) return; // claimed before: never started twice
    try {
      await writePack({ tasks: this.deps.tasks, sources: this.deps.sources, key: this.deps.keys.current(d.group), nowMs }, files, id, d);
    } catch (err) {
      await this.finish(run, 'failed', { exitCode: null, signal: null, tail: `context pack not written: ${(err as Error).message}` });
      return;
    }
    const values = {
      task_id: d.taskId,
      dispatch_id: d.id,
      group: d.group,
      ipc_dir: this.deps.config.ipcDir === null ? '' : `${this.deps.config.ipcDir}/${d.group}`,
      context_file: files.contextFile,
      secret_file: files.secretFile,
    };
    const [program, ...args] = spec.command.map((a) => fill(a, values));
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(spec.env)) env[k] = fill(v, values);
    const child = spawnGated(program!, args, { env, cwd: files.dir });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      tail.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const ended = new Promise<{ code: number | null; signal: string | null; error?: string }>((resolve) => {
      child.once('error', (err) => resolve({ code: null, signal: null, error: err.message }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    const live: Live = { group: d.group, pid: child.pid ?? 0, cancelled: false, timedOut: false };
    if (child.pid !== undefined) {
      this.live.set(id, live);
      // The command starts only once its pid (its process group) is committed: see ./spawn.ts.
      let recorded = false;
      try {
        recorded =
          (await this.deps.runs.update(id, ['claimed'], { status: 'running', pid: child.pid, startedAt: this.deps.clock.now() }, [
            { actor: 'system', kind: 'run.started', subject: d.taskId, detail: { run_id: id, dispatch_id: d.id, pid: child.pid, program } },
          ], this.deps.clock.now())) !== null;
      } catch (err) {
        this.deps.logger.error({ run_id: id, err: (err as Error).message }, 'run start not recorded');
      }
      openGate(child, recorded);
      if (recorded) await ackDispatch(this.deps, d.id, d.group).catch((err: unknown) => this.deps.logger.warn({ dispatch_id: d.id, err: (err as Error).message }, 'dispatch ack failed'));
      else tail.push('not started: the run was no longer claimed, or its pid could not be recorded');
    }
    const timer = setTimeout(() => {
      live.timedOut = true;
      killGroup(live.pid);
    }, spec.timeout_s * 1000);
    timer.unref();
    const done = ended.then(async (r) => {
      clearTimeout(timer);
      this.live.delete(id);
      if (r.error) tail.push(`spawn failed: ${r.error}`);
      const status: RunStatus = live.cancelled ? 'cancelled' : live.timedOut ? 'timed_out' : r.code === 0 ? 'succeeded' : 'failed';
      const current = (await this.deps.runs.find(id)) ?? run;
      await this.finish(current, status, { exitCode: r.code, signal: r.signal, tail: tail.join('\n') });
    });
    const tracked = done.catch((err: unknown) => this.deps.logger.error({ run_id: id, err }, 'run not recorded')).finally(() => this.settled.delete(tracked));
    this.settled.add(tracked);
  }

  private async finish(run: RunRow, status: RunStatus, end: { exitCode: number | null; signal: string | null; tail: string }): Promise<void> {
    const nowMs = this.deps.clock.now();
    const outputTail = redactString(end.tail);
    const durationMs = run.startedAt === null ? 0 : nowMs - run.startedAt;
    // A cancelled run was marked by `cancel`; its end (exit, output) is still recorded on it.
    const from: readonly RunStatus[] = status === 'cancelled' ? [...ACTIVE, 'cancelled'] : ACTIVE;
    await this.deps.runs.update(run.id, from, { status, exitCode: end.exitCode, signal: end.signal, outputTail, finishedAt: nowMs }, [
      { actor: 'system', kind: 'run.finished', subject: run.taskId, detail: { run_id: run.id, dispatch_id: run.dispatchId, status, exit_code: end.exitCode, signal: end.signal, duration_ms: durationMs, output_tail: outputTail } },
    ], nowMs);
    if (status !== 'succeeded') this.failed?.inc({ group: run.group, status });
    this.deps.logger.info({ run_id: run.id, task_id: run.taskId, status, exit_code: end.exitCode, signal: end.signal, duration_ms: durationMs }, 'run finished');
  }

  /**
   * Cancels a run as `actor` (with an optional `reason`, kept on the audit row): a running process group is killed and the run ends `cancelled`; a
   * run only claimed is marked `cancelled` at once (it will not be started). Works from any process
   * on the broker's host (the CLI too): the pid is on the run.
   * @throws ApiError 404 `not_found`; 409 `illegal_transition` when the run has already ended.
   */
  async cancel(id: string, actor: string, reason?: string): Promise<RunRow> {
    const run = await this.deps.runs.find(id);
    if (!run) throw new ApiError('not_found', `No run ${id}.`);
    const live = this.live.get(id);
    if (live) live.cancelled = true;
    const nowMs = this.deps.clock.now();
    const done = await this.deps.runs.update(id, ACTIVE, { status: 'cancelled', finishedAt: nowMs }, [{ actor, kind: 'run.cancelled', subject: run.taskId, detail: { run_id: id, pid: run.pid, ...(reason ? { reason } : {}) } }], nowMs);
    if (!done) throw new ApiError('illegal_transition', `Run ${id} is ${run.status}; only a claimed or running run can be cancelled.`);
    if (run.pid !== null) killGroup(run.pid);
    return done;
  }

  /** Starts recovery then a pass every `intervalMs` ms (passes never overlap). @returns stop(). */
  startLoop(intervalMs: number): () => void {
    let running = false;
    let stopped = false;
    const tick = () => {
      if (running || stopped) return;
      running = true;
      this.tick()
        .catch((err: unknown) => this.deps.logger.error({ err }, 'runner pass failed'))
        .finally(() => {
          running = false;
        });
    };
    running = true;
    this.recover()
      .catch((err: unknown) => this.deps.logger.error({ err }, 'runner recovery failed'))
      .finally(() => {
        running = false;
        tick();
      });
    const timer = setInterval(tick, intervalMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }
}

/** SIGKILLs the process group `pid` leads; a group already gone is not an error. */
function killGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group has exited
  }
}
