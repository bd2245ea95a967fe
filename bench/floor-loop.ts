/**
 * Bench (f): the storage floor in-process. A loop over a bare better-sqlite3 connection (see
 * `bench/floor.ts`) writing exactly the rows of one L1 call per call, `BENCH_FLOOR_BATCH` writes
 * (default 32, what (e)'s group commit batches at 32 callers) per `BEGIN IMMEDIATE … COMMIT`:
 * the claims of a batch of calls in one commit, then their outcomes in the next (a call's claim
 * must be durable before it runs, its outcome before it is answered, so they never share one).
 * Runs `BENCH_DURATION_S` seconds after a 2 s warm-up and sends {@link FloorResult} over IPC.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FloorWriter, openFloorDb } from './floor.js';

/** What (f) measures. CPU in µs of this process (user + system) per call. */
export interface FloorResult {
  calls_per_s: number;
  calls: number;
  cpu_us_per_call: number;
  writes_per_commit: number;
}

const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 8);
const BATCH = Number(process.env['BENCH_FLOOR_BATCH'] ?? 32);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-floor-'));
const writer = new FloorWriter(openFloorDb(path.join(dir, 'floor.db')));
const fingerprint = 'f'.repeat(64);
let n = 0;

/** Runs calls in batches for `seconds`; returns how many. */
function run(seconds: number): number {
  const until = performance.now() + seconds * 1000;
  let calls = 0;
  while (performance.now() < until) {
    const first = n;
    writer.begin.run();
    for (let i = 0; i < BATCH; i++) writer.claim(`call${(first + i) % 128}`, `f-${first + i}`, fingerprint, Date.now());
    writer.commit.run();
    writer.begin.run();
    for (let i = 0; i < BATCH; i++) writer.end(`call${(first + i) % 128}`, `f-${first + i}`, Date.now());
    writer.commit.run();
    n += BATCH;
    calls += BATCH;
  }
  return calls;
}

run(2);
const cpu0 = process.cpuUsage();
const started = performance.now();
const calls = run(DURATION_S);
const elapsed = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
writer.db.close();
fs.rmSync(dir, { recursive: true, force: true });
const result: FloorResult = { calls_per_s: Math.round(calls / elapsed), calls, cpu_us_per_call: Math.round(((cpu.user + cpu.system) / calls) * 10) / 10, writes_per_commit: BATCH };
process.send!(result);
process.disconnect();
