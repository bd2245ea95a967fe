/**
 * The storage floor of (e), for `bench/cpu-e.ts`: the rows one L1 call writes (the `running`
 * `ext_calls` row and its `call.claimed` audit row; then the outcome update and its
 * `call.succeeded` audit row, the receipt and answer texts as long as (e)'s), each audit row hash-chained (sha256 of the previous hash and the
 * row's canonical JSON, the details shaped like the broker's), on the same database and pragmas
 * (WAL, `synchronous=FULL`), 32 calls per transaction (claims in one, their outcomes in the next),
 * with none of the broker's logic. Sends a {@link CallsResult} (µs of CPU per call).
 */
import { hash } from 'node:crypto';
import Database from 'better-sqlite3';
import path from 'node:path';
import type { CallsResult } from './calls.js';

const env = JSON.parse(process.env['BENCH_ENV'] ?? '{}') as Record<string, string>;
const callers = JSON.parse(process.env['BENCH_CALLERS'] ?? '[]') as string[];
const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 8);
const BATCH = 32;

const db = new Database(path.join(env['BROKER_DATA_DIR']!, 'broker.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
const head = db.prepare('SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1');
const audit = db.prepare('INSERT INTO gov_activities (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const claim = db.prepare(
  `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, receipt, created_at, instance_id)
   VALUES (?, ?, ?, 'bench.noop', 1, 'bench:noop', 'bench no-op', NULL, 'g_bench', 'running', ?, ?, NULL)`,
);
const end = db.prepare(
  `UPDATE ext_calls SET status = 'succeeded', http_status = 200, response = ?, attempts = 1, finished_at = ?, duration_ms = 0
   WHERE "group" = ? AND request_id = ? AND status = 'running'`,
);
const steps = 'signature:pass request:pass idempotency:pass switch:pass backpressure:pass grant:pass expiry:pass level:pass deny_list:skip allow_list:skip resource:pass task:skip approval:skip provider:pass claim:pass';
// The receipt and the answer as long as (e)'s (1 112 and 1 298 characters; notes padded).
const receiptOf = (note: string) => ({ request_id: 'f-0', group: 'call000', action: 'bench.noop', decided_at: new Date().toISOString(), decision: 'allowed', code: null, grant_id: 'g_bench', task_id: null, steps: steps.split(' ').map((s) => ({ step: s.split(':')[0], result: s.split(':')[1], note })) });
const receipt = JSON.stringify(receiptOf('x'.repeat(16))).padEnd(1112, ' ');
const response = JSON.stringify({ request_id: 'f-0', status: 'succeeded', action: 'bench.noop', result: { ok: true }, receipt: receiptOf('x'.repeat(16)), duration_ms: 0 }).padEnd(1298, ' ');
const claimDetail = JSON.stringify({ action: 'bench.noop', grant_id: 'g_bench', resource: 'bench:noop', steps, summary: 'bench no-op', task_id: null });
const endDetail = JSON.stringify({ action: 'bench.noop', attempts: 1, duration_ms: 0, http_status: 200 });

let seq = 0;
let prev = '';
/** One hash-chained audit row. */
function append(ts: string, actor: string, kind: string, subject: string, detail: string): void {
  seq += 1;
  const h = hash('sha256', `${prev}{"actor":${JSON.stringify(actor)},"detail":${detail},"kind":${JSON.stringify(kind)},"seq":${seq},"subject":${JSON.stringify(subject)},"ts":${JSON.stringify(ts)}}`, 'hex');
  audit.run(seq, ts, actor, kind, subject, detail, prev, h);
  prev = h;
}
const claims = db.transaction((from: number) => {
  const r = head.get() as { seq: number; hash: string };
  seq = r.seq;
  prev = r.hash;
  const now = Date.now();
  const ts = new Date(now).toISOString();
  for (let n = from; n < from + BATCH; n++) {
    const group = callers[n % callers.length]!;
    claim.run(group, `f-${n}`, hash('sha256', `f-${n}`, 'hex'), receipt, now);
    append(ts, group, 'call.claimed', `call:${group}:f-${n}`, claimDetail);
  }
});
const ends = db.transaction((from: number) => {
  const r = head.get() as { seq: number; hash: string };
  seq = r.seq;
  prev = r.hash;
  const now = Date.now();
  const ts = new Date(now).toISOString();
  for (let n = from; n < from + BATCH; n++) {
    const group = callers[n % callers.length]!;
    end.run(response, now, group, `f-${n}`);
    append(ts, group, 'call.succeeded', `call:${group}:f-${n}`, endDetail);
  }
});

let next = 0;
function run(seconds: number): number {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  while (performance.now() < until) {
    claims.immediate(next);
    ends.immediate(next);
    next += BATCH;
    done += BATCH;
  }
  return done;
}
run(2);
const cpu0 = process.cpuUsage();
const started = performance.now();
const calls = run(DURATION_S);
const elapsedS = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
db.close();
const result: CallsResult = {
  calls_per_s: Math.round(calls / elapsedS),
  calls,
  cpu_us_per_call: Math.round((cpu.user + cpu.system) / calls),
  writes_per_batch: BATCH,
  batch_ms: 0,
  max_rss_bytes: process.resourceUsage().maxRSS * 1024,
};
process.send!(result);
process.disconnect();
