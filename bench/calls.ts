/**
 * Bench reference (e): the call path of (b) in-process, without HTTP and without step 1 — the real
 * `CallService.submit` (steps 2–14: decision, claim, the group's p-queue, the no-op action, outcome)
 * with its durable writes (`synchronous=FULL`, group commit), driven by as many concurrent callers
 * as (b) has connections. (b) does all of this and more, so (e)'s calls/s bounds (b)'s on the same
 * machine: when (e)/(a) is below a target for (b)/(a), no HTTP or signature work can reach it.
 *
 * A child of `bench/run.ts` with IPC: reads the data directory's environment from `BENCH_ENV` (the
 * one the bench server used, with its 128 caller groups and their L1 grants) and the callers from
 * `BENCH_CALLERS`, runs for `BENCH_DURATION_S` seconds after a 2 s warm-up, and sends
 * {@link CallsResult}.
 */
import { CallService } from '../src/modules/calls/service.js';
import { closeDeps } from '../src/app/deps.js';
import { createLogger } from '../src/platform/log.js';
import { benchDeps } from './setup.js';

/** What (e) measures. Throughput in calls/s, CPU in µs of this process per call. */
export interface CallsResult {
  calls_per_s: number;
  calls: number;
  cpu_us_per_call: number;
  /** Mean writes per group-commit batch, and mean batch duration in ms (its fsync included). */
  writes_per_batch: number;
  batch_ms: number;
  max_rss_bytes: number;
}

const env = JSON.parse(process.env['BENCH_ENV'] ?? '{}') as Record<string, string>;
const callers = JSON.parse(process.env['BENCH_CALLERS'] ?? '[]') as string[];
const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 8);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const WARMUP_S = 2;

const deps = await benchDeps(env);
const service = new CallService(deps);
const log = createLogger('silent');
const body = new TextEncoder().encode(JSON.stringify({ action: 'bench.noop', params: {} }));
const keyids = new Map(callers.map((g) => [g, deps.keys.current(g).keyid]));
let next = 0;

/** One caller: submits calls back to back until `until` (performance.now() ms); returns how many succeeded. */
async function caller(until: number): Promise<number> {
  let done = 0;
  while (performance.now() < until) {
    const n = next++;
    const group = callers[n % callers.length]!;
    const answer = await service.submit({ group, keyid: keyids.get(group)!, requestId: `e-${n}`, rawBody: body, log, instance: '/v1/ext/calls' });
    if (answer.status !== 200) throw new Error(`(e) call answered ${answer.status}: ${answer.body}`);
    done += 1;
  }
  return done;
}

/** Runs CONNECTIONS callers for `seconds`; returns the calls they completed. */
async function run(seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  const counts = await Promise.all(Array.from({ length: CONNECTIONS }, () => caller(until)));
  return counts.reduce((a, b) => a + b, 0);
}

await run(WARMUP_S);
const stats0 = { ...service.store.stats };
const cpu0 = process.cpuUsage();
const started = performance.now();
const calls = await run(DURATION_S);
const elapsedS = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
const stats = service.store.stats;
const batches = stats.batches - stats0.batches;
const result: CallsResult = {
  calls_per_s: Math.round(calls / elapsedS),
  calls,
  cpu_us_per_call: Math.round((cpu.user + cpu.system) / calls),
  writes_per_batch: Math.round(((stats.writes - stats0.writes) / batches) * 10) / 10,
  batch_ms: Math.round(((stats.seconds - stats0.seconds) / batches) * 1e5) / 100,
  max_rss_bytes: process.resourceUsage().maxRSS * 1024,
};
await closeDeps(deps);
process.send!(result);
process.disconnect();
