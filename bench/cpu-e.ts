/**
 * (e)'s CPU per call, compared between builds and against a storage floor, interleaved: the tool
 * behind docs/performance.md's "Where (e)'s CPU goes". Builds one bench fixture (the 128 caller
 * groups of `bench/run.ts` with their L1 grants for `bench.noop`), then runs, `BENCH_ROUNDS` times
 * in turn, `bench/calls.js` of each build directory given as an argument (e.g. a copy of `dist/`
 * from before a change, then `dist/`) on a fresh copy of that fixture, and the storage floor
 * (`bench/floor-e.js` of the first build): the same rows with none of the broker's logic. Prints
 * each run's µs of CPU per call (user + system, `process.cpuUsage`) and each build's median.
 * `BENCH_PROFILE=dir` adds `--cpu-prof --cpu-prof-dir=dir` to the calls runs (`dir/floor` for the
 * floor's; see `scripts/cpuprofile-top.ts`).
 * `BENCH_PARTS=1` then times (e)'s parts alone in each build (`bench/parts-e.ts`).
 * Usage: `node dist/bench/cpu-e.js [buildDir…]` (default `dist`); `BENCH_DURATION_S` (default 5).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { closeDeps } from '../src/app/deps.js';
import { PACKAGE_ROOT } from '../src/platform/paths.js';
import type { CallsResult } from './calls.js';
import { benchDataDir, benchDeps, createGrants } from './setup.js';

const builds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['dist'];
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const PROFILE = process.env['BENCH_PROFILE'];
const DURATION_S = process.env['BENCH_DURATION_S'] ?? '5';

const callers = Array.from({ length: 128 }, (_, i) => `call${String(i).padStart(3, '0')}`);
const { dataDir, env } = benchDataDir(callers);
const setup = await benchDeps(env);
await createGrants(
  setup,
  callers.map((group) => ({ group, provider: 'bench', level: 1 as const, reason: 'bench', allowed_actions: null, denied_actions: null, resources: null })),
);
await closeDeps(setup);

/** Runs one script of a build on a fresh copy of the fixture; resolves with its message. */
function runOnCopy(script: string, flags: string[]): Promise<CallsResult> {
  const copy = `${dataDir}-${Math.random().toString(36).slice(2)}`;
  fs.cpSync(dataDir, copy, { recursive: true });
  const childEnv = { ...env, BROKER_DATA_DIR: copy, BROKER_POLICIES_DIR: path.join(copy, 'policies') };
  const proc = spawn(process.execPath, [...flags, script], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, BENCH_ENV: JSON.stringify(childEnv), BENCH_CALLERS: JSON.stringify(callers), BENCH_DURATION_S: DURATION_S },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('message', (m) => resolve(m as CallsResult));
    proc.once('exit', (code) => {
      fs.rmSync(copy, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`${script} exited with ${code}`));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = new Map<string, number[]>();
const record = (name: string, v: number) => results.set(name, [...(results.get(name) ?? []), v]);
for (let round = 0; round < ROUNDS; round++) {
  for (const build of builds) {
    const r = await runOnCopy(path.resolve(PACKAGE_ROOT, build, 'bench/calls.js'), PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []);
    record(build, r.cpu_us_per_call);
    process.stdout.write(`round ${round + 1} ${build}: ${r.cpu_us_per_call} µs CPU/call, ${r.calls} calls, ${r.calls_per_s} calls/s, ${r.writes_per_batch} writes/batch\n`);
  }
  const f = await runOnCopy(path.resolve(PACKAGE_ROOT, builds[0]!, 'bench/floor-e.js'), PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}/floor`] : []);
  record('floor', f.cpu_us_per_call);
  process.stdout.write(`round ${round + 1} floor: ${f.cpu_us_per_call} µs CPU/call, ${f.calls} calls, ${f.calls_per_s} calls/s\n`);
}
if (process.env['BENCH_PARTS']) {
  for (const build of builds) {
    const parts = (await runOnCopy(path.resolve(PACKAGE_ROOT, build, 'bench/parts-e.js'), PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}/parts`] : [])) as unknown as Record<string, number>;
    process.stdout.write(`${build} parts, µs CPU per call: ${JSON.stringify(parts)}\n`);
  }
}
const floor = results.has('floor') ? median(results.get('floor')!) : Number.NaN;
for (const [name, xs] of results) {
  process.stdout.write(`${name}: median ${median(xs)} µs CPU/call (runs ${xs.join(', ')})${name === 'floor' ? '' : `, ${(median(xs) / floor).toFixed(2)} × floor`}\n`);
}
fs.rmSync(dataDir, { recursive: true, force: true });
