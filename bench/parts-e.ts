/**
 * (e)'s CPU per call split into parts, each timed alone on the bench fixture (for
 * docs/performance.md's "Where (e)'s CPU goes"), in µs of CPU per call (`process.cpuUsage`):
 * - `evaluate`: steps 2–12 and the provider check (`CallService.evaluate`: the body's parse and
 *   schemas, the step-3 row read, the kill-switch read, the grant index and its change sequence);
 * - `records`: the claim row, the answer and the outcome row as data (`claimRecord`,
 *   `outcomeAnswer`, `outcomeRecord`: the receipt serialised twice, the answer once);
 * - `execute`: `runAction` of `bench.noop` (abort signal, timer, p-retry);
 * - `storage`: the call store's claim then end for 32 concurrent calls (group commit: the two
 *   rows, the two audit rows with redaction, canonical JSON and hash, one COMMIT per batch);
 * - `floor_on_broker_connection`: `floor-e.ts`'s loop (raw statements, 32 calls per
 *   transaction) on the broker's own connection, in this process;
 * - `submit`: the whole call (`CallService.submit`), 32 concurrent callers, as (e) runs it.
 * A child of `bench/cpu-e.ts` (`BENCH_PARTS=1`) with IPC, like `bench/calls.ts`.
 */
import fs from 'node:fs';
import { CallService } from '../src/modules/calls/service.js';
import { closeDeps } from '../src/app/deps.js';
import { createLogger } from '../src/platform/log.js';
import { claimRecord, outcomeRecord } from '../src/modules/calls/records.js';
import { outcomeAnswer } from '../src/modules/calls/answer.js';
import { runAction } from '../src/modules/calls/execute.js';
import { canonicalDetail, storedActivityHash } from '../src/platform/audit/chain.js';
import { benchDeps } from './setup.js';

const env = JSON.parse(process.env['BENCH_ENV'] ?? '{}') as Record<string, string>;
const callers = JSON.parse(process.env['BENCH_CALLERS'] ?? '[]') as string[];
const N = Number(process.env['BENCH_PARTS_N'] ?? 20_000);

const deps = await benchDeps(env);
const service = new CallService(deps);
const log = createLogger('silent');
const body = new TextEncoder().encode(JSON.stringify({ action: 'bench.noop', params: {} }));
const keyids = new Map(callers.map((g) => [g, deps.keys.current(g).keyid]));
const sub = (n: number) => {
  const group = callers[n % callers.length]!;
  return { group, keyid: keyids.get(group)!, requestId: `p-${n}`, rawBody: body, log, instance: '/v1/ext/calls' };
};

/** µs of CPU per iteration of `work(i)` over `n0` iterations, after `n0`/4 of warm-up; the median of 3. */
async function time(work: (i: number) => unknown, base: number, n0 = N): Promise<number> {
  const runs: number[] = [];
  for (let r = 0; r < 4; r++) {
    const n = r === 0 ? n0 / 4 : n0;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await work(base + r * N + i);
    const c = process.cpuUsage(c0);
    if (r > 0) runs.push((c.user + c.system) / n);
  }
  return Math.round(runs.sort((a, b) => a - b)[1]! * 10) / 10;
}

const now = deps.clock.now();
const evaluate = await time((i) => service.evaluate(sub(i), now), 1e7);
const ev = service.evaluate(sub(0), now);
if (ev.kind !== 'allowed') throw new Error(`the fixture call is not allowed: ${ev.kind}`);
const outcome = { kind: 'succeeded' as const, result: { ok: true }, attempts: 1, durationMs: 0 };
const records = await time((i) => {
  const receipt = { ...ev.receipt, steps: [...ev.receipt.steps] };
  claimRecord({ group: 'call000', requestId: `r-${i}`, fingerprint: ev.fingerprint, action: ev.shape.action, params: ev.shape.params, resource: ev.shape.resource, taskId: null, grantId: ev.grant.id, receipt, now, instanceId: deps.instanceId });
  receipt.steps.push({ step: 'execute', result: 'pass', note: 'succeeded; 1 attempt(s)' });
  const answer = outcomeAnswer(`r-${i}`, 'bench.noop', receipt, outcome, '/v1/ext/calls');
  outcomeRecord('call000', `r-${i}`, 'bench.noop', outcome, answer, now);
}, 2e7);
const execute = await time(() => runAction(ev.shape.action, ev.shape.params, { group: 'call000', requestId: 'x', taskId: null, grantResources: null, log }, 30_000), 3e7);

/** 32 concurrent claims then their 32 ends, per iteration of 32 calls. */
const receiptText = JSON.stringify(ev.receipt);
const storage =
  Math.round(
    ((await time(async (i) => {
      const ids = Array.from({ length: 32 }, (_, k) => `s-${i}-${k}`);
      await Promise.all(ids.map((id, k) => {
        const group = callers[k % callers.length]!;
        const c = claimRecord({ group, requestId: id, fingerprint: ev.fingerprint, action: ev.shape.action, params: ev.shape.params, resource: ev.shape.resource, taskId: null, grantId: ev.grant.id, receipt: ev.receipt, now, instanceId: deps.instanceId });
        return service.store.claim({ ...c.call, receipt: receiptText }, c.audit);
      }));
      await Promise.all(ids.map((id, k) => {
        const group = callers[k % callers.length]!;
        const answer = { status: 200, body: receiptText, headers: {} };
        const o = outcomeRecord(group, id, 'bench.noop', outcome, answer, now);
        return service.store.end(group, id, o.end, o.audit);
      }));
    }, 4e7, N / 32)) / 32) * 10,
  ) / 10;

/**
 * The floor's loop (`floor-e.ts`: raw statements, the same rows, 32 calls per transaction) on the
 * broker's own connection, in this process: what storage costs without the call store's code.
 */
const sqlite = deps.db.sqlite;
const fHead = sqlite.prepare('SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1');
const fAudit = sqlite.prepare('INSERT INTO gov_activities (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const fClaim = sqlite.prepare(
  `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, receipt, created_at, instance_id)
   VALUES (?, ?, ?, 'bench.noop', 1, 'bench/noop', 'noop on bench/noop', NULL, ?, 'running', ?, ?, NULL)`,
);
const fEnd = sqlite.prepare(`UPDATE ext_calls SET status = 'succeeded', http_status = 200, response = ?, attempts = 1, finished_at = ?, duration_ms = 0 WHERE "group" = ? AND request_id = ? AND status = 'running'`);
const claimDetail = canonicalDetail({ action: 'bench.noop', grant_id: ev.grant.id, resource: 'bench/noop', steps: 'x'.repeat(180), summary: 'noop on bench/noop', task_id: null });
const endDetail = canonicalDetail({ action: 'bench.noop', attempts: 1, duration_ms: 0, http_status: 200 });
const responseText = receiptText.padEnd(1298, ' ');
let fSeq = 0;
let fPrev = '';
const fAppend = (ts: string, actor: string, kind: string, subject: string, detail: string) => {
  fSeq += 1;
  const h = storedActivityHash(fPrev, { seq: fSeq, ts, actor, kind, subject, detail });
  fAudit.run(fSeq, ts, actor, kind, subject, detail, fPrev, h);
  fPrev = h;
};
const fBatch = (i: number, claim: boolean) => () => {
  const r = fHead.get() as { seq: number; hash: string };
  fSeq = r.seq;
  fPrev = r.hash;
  const ts = new Date(now).toISOString();
  for (let k = 0; k < 32; k++) {
    const group = callers[k % callers.length]!;
    const id = `f-${i}-${k}`;
    if (claim) fClaim.run(group, id, ev.fingerprint, ev.grant.id, receiptText, now);
    else fEnd.run(responseText, now, group, id);
    fAppend(ts, group, claim ? 'call.claimed' : 'call.succeeded', `call:${group}:${id}`, claim ? claimDetail : endDetail);
  }
};
const floorHere =
  Math.round(
    ((await time((i) => {
      sqlite.transaction(fBatch(i, true)).immediate();
      sqlite.transaction(fBatch(i, false)).immediate();
    }, 6e7, N / 32)) / 32) * 10,
  ) / 10;

let next = 5e7;
const submit =
  Math.round(
    ((await time(async () => {
      await Promise.all(Array.from({ length: 32 }, () => service.submit(sub(next++))));
    }, 0, N / 32)) / 32) * 10,
  ) / 10;

const sizes = deps.db.sqlite.prepare("SELECT length(receipt) AS receipt, length(response) AS response, (SELECT avg(length(detail)) FROM gov_activities WHERE subject LIKE 'call:%') AS detail FROM ext_calls WHERE request_id LIKE 'p-%' LIMIT 1").get();
const walBytes = fs.statSync(`${env['BROKER_DATA_DIR']}/broker.db-wal`).size;
const checkpoint = deps.db.sqlite.pragma('wal_checkpoint(PASSIVE)');
await closeDeps(deps);
process.send!({ evaluate, records, execute, storage, floor_on_broker_connection: floorHere, submit, walBytes, checkpoint, sizes });
process.disconnect();
