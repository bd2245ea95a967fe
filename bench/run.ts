/**
 * `npm run bench` (docs/performance.md): builds `dist/`, starts a real broker process (the same
 * compiled JavaScript `npm start` runs) and drives it with autocannon, then runs the in-process
 * measures, the direct-call comparison, the growth rows and the PostgreSQL rows:
 * - (a) a bare Hono endpoint (same process as the broker, its own port);
 * - (b) signed L1 calls to `bench.noop` through `POST /v1/ext/calls`, durable audit
 *   (`synchronous=FULL`): decision, claim and outcome rows, group commit;
 * - (c) signed calls denied at step 8 (`action_denied`, audited);
 * - (g) the floor server: a bare Hono app doing (f)'s writes behind one SHA-256 and one HMAC
 *   (`bench/server.ts`, same process, its own port), loaded like (b);
 * - references: the broker's `GET /health` (its middleware alone) and a signed `GET /v1/whoami`;
 * - (d) steps 1–12 in-process over 100 000 grants and 1 000 000 audit rows, and over 10 grants and
 *   no rows (`bench/decision.ts`), with (i) Cedar deciding the same candidates (`bench/cedar.ts`);
 * - (e) the calls of (b) in-process (`bench/calls.ts`: steps 2–14, no HTTP, no step 1);
 * - (f) the storage floor in-process (`bench/floor-loop.ts`);
 * - (h) `github.get_repo` through the broker against Octokit directly (`bench/overhead.ts`);
 * - growth: (b), auditor queries, `audit verify` and peak RSS at 10 M audit rows and 100 000
 *   grants (`bench/growth.ts`; `BENCH_GROWTH_ROWS` picks a smaller size);
 * - PostgreSQL: (b) on PostgreSQL and 1, 2, 3 replicas on one PostgreSQL (`bench/postgres.ts`),
 *   skipped with the reason when `serve` cannot use a postgres:// URL.
 * Writes `bench/results/<timestamp>.json` (not committed) and prints the figures and one table of
 * every target. Each HTTP scenario also reports the server process's CPU per request.
 * `BENCH_CPU_PROF=<dir>` runs (e) under `node --cpu-prof` (see `bench/profile.ts`).
 * Environment: `BENCH_DURATION_S` (default 8), `BENCH_CONNECTIONS` (default 32), `BENCH_POOL_RATE`
 * (default 10000), `BENCH_ONLY` (default all): a comma-separated subset of
 * `a,b,c,g,ref,d,e,f,h,growth,pg`, e.g. `b,g,e,f` for the floor ratios in a minute.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GroupCredential } from '../src/client/index.js';
import { closeDeps } from '../src/app/deps.js';
import { PACKAGE_ROOT } from '../src/platform/paths.js';
import type { CallsResult } from './calls.js';
import type { FloorResult } from './floor-loop.js';
import { benchGrants } from './growth-fixture.js';
import { runGrowth, type GrowthResult } from './growth.js';
import { child, CONNECTIONS, DURATION_S, figures, load, nextMessage, peakRss, signedCalls, signedGets, stopServer, WARMUP_S, type HttpResult } from './http.js';
import { runOverhead, type OverheadResult } from './overhead.js';
import { runPostgres, type PostgresResult } from './postgres.js';
import { targetRows } from './report.js';
import { benchDataDir, benchDeps, createGrants } from './setup.js';

const RESULTS = path.join(PACKAGE_ROOT, 'bench/results');
const SCENARIOS = ['a', 'b', 'c', 'g', 'ref', 'd', 'e', 'f', 'h', 'growth', 'pg'] as const;
const ONLY = new Set((process.env['BENCH_ONLY'] ?? SCENARIOS.join(',')).split(',').map((x) => x.trim()));
const wants = (scenario: (typeof SCENARIOS)[number]) => ONLY.has(scenario);

/** Percentiles of one timed part of (d), in µs. */
interface Percentiles {
  p50_us: number;
  p99_us: number;
  p999_us: number;
  mean_us: number;
  max_us: number;
}

/** What `bench/decision.ts` measures. */
interface DecisionResult extends Percentiles {
  grants: number;
  candidates_per_decision: number;
  audit_rows: number;
  decisions_per_s: number;
  step1_signature: Percentiles;
  steps2_12: Percentiles;
  step1_crypto_floor: Percentiles;
  cedar: Percentiles & { iterations: number; policies_per_set: number; version: string };
  max_rss_bytes: number;
}

/** Runs (d) (and (i) beside it) over a fixture of `grants` grants and `auditRows` rows. */
async function decision(grants: number, auditRows: number): Promise<DecisionResult & { fixture_setup_s: number }> {
  const sizes = { BENCH_DECISION_GRANTS: String(grants), BENCH_DECISION_AUDIT_ROWS: String(auditRows) };
  process.stderr.write(`(d) decision micro-benchmark: building ${grants} grants and ${auditRows} audit rows…\n`);
  const fixture = await nextMessage<{ env: Record<string, string>; setup_s: number }>(child('decision', { ...sizes, BENCH_PHASE: 'setup' }));
  const d = await nextMessage<DecisionResult>(child('decision', { ...sizes, BENCH_PHASE: 'measure', BENCH_ENV: JSON.stringify(fixture.env) }));
  fs.rmSync(fixture.env['BROKER_DATA_DIR']!, { recursive: true, force: true });
  process.stderr.write(`(d) at ${grants} grants: steps 2–12 p50 ${d.steps2_12.p50_us} µs, (i) Cedar p50 ${d.cedar.p50_us} µs\n`);
  return { ...d, fixture_setup_s: fixture.setup_s };
}

const started = performance.now();
// Groups: 128 that hold an L1 grant for bench.noop, 16 whose grant denies it.
const callers = Array.from({ length: 128 }, (_, i) => `call${String(i).padStart(3, '0')}`);
const denied = Array.from({ length: 16 }, (_, i) => `deny${String(i).padStart(2, '0')}`);
const body = JSON.stringify({ action: 'bench.noop', params: {} });
const loadAvg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const loadAtStart = loadAvg();

const http: HttpResult[] = [];
let serverRss: number | null = null;
const { dataDir, env } = benchDataDir([...callers, ...denied]);
if (['a', 'b', 'c', 'g', 'ref'].some((s) => ONLY.has(s))) {
  const setup = await benchDeps(env);
  await createGrants(setup, benchGrants(callers, denied));
  const cred = (g: string): GroupCredential => ({ keyid: setup.keys.current(g).keyid, secret: setup.keys.current(g).secret });
  const callerCreds = callers.map(cred);
  const deniedCreds = denied.map(cred);
  await closeDeps(setup);
  process.stderr.write(`bench: broker on ${dataDir} (synchronous=FULL), ${CONNECTIONS} connections, ${WARMUP_S}+${DURATION_S} s per scenario, scenarios ${[...ONLY].join(',')}\n`);
  const server = child('server', { ...env, BROKER_LOG_LEVEL: 'info' });
  const urls = await nextMessage<{ broker: string; bare: string; floor: string }>(server);
  const a = wants('a') ? await load(server, '(a) bare Hono', { url: urls.bare }) : null;
  const baseline = a?.r.requests.average ?? null;
  if (a) http.push(figures('(a) bare Hono GET /', a, null));
  if (wants('b')) http.push(figures('(b) signed L1 call, durable audit', await load(server, '(b) signed L1 call', { url: urls.broker, requests: [{ setupRequest: signedCalls('(b)', urls.broker, callerCreds, body) }] }), baseline));
  if (wants('g')) http.push(figures('(g) floor server: body, SHA-256, HMAC, same writes', await load(server, '(g) floor server', { url: urls.floor, requests: [{ method: 'POST', path: '/v1/ext/calls', body, headers: { 'content-type': 'application/json' } }] }), baseline));
  if (wants('c')) http.push(figures('(c) denied call (action_denied)', await load(server, '(c) denied call', { url: urls.broker, requests: [{ setupRequest: signedCalls('(c)', urls.broker, deniedCreds, body) }] }), baseline));
  if (wants('ref')) {
    http.push(figures('(ref) broker GET /health', await load(server, '(ref) broker GET /health', { url: `${urls.broker}/health` }), baseline));
    http.push(figures('(ref) signed GET /v1/whoami', await load(server, '(ref) signed GET /v1/whoami', { url: urls.broker, requests: [{ setupRequest: signedGets('(ref)', urls.broker, callerCreds, '/v1/whoami') }] }), baseline));
  }
  serverRss = peakRss(server.pid!);
  await stopServer(server);
}

let e: CallsResult | null = null;
if (wants('e')) {
  if (!wants('b')) {
    const setup = await benchDeps(env);
    await createGrants(setup, benchGrants(callers, denied));
    await closeDeps(setup);
  }
  process.stderr.write('(e) the same calls in-process, without HTTP or step 1…\n');
  // BENCH_CPU_PROF=<dir>: (e) runs under `node --cpu-prof`; `node dist/bench/profile.js <dir>/*.cpuprofile` lists its top entries.
  const prof = process.env['BENCH_CPU_PROF'];
  const profArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(prof)}`] : [];
  e = await nextMessage<CallsResult>(child('calls', { BENCH_ENV: JSON.stringify(env), BENCH_CALLERS: JSON.stringify(callers), BENCH_DURATION_S: String(DURATION_S), BENCH_CONNECTIONS: String(CONNECTIONS) }, profArgs));
  process.stderr.write(`(e) ${e.calls_per_s} calls/s, ${e.cpu_us_per_call} µs CPU per call, ${e.writes_per_batch} writes per commit\n`);
}
fs.rmSync(dataDir, { recursive: true, force: true });

let f: FloorResult | null = null;
if (wants('f')) {
  f = await nextMessage<FloorResult>(child('floor-loop', { BENCH_DURATION_S: String(DURATION_S), BENCH_FLOOR_BATCH: String(Math.max(1, Math.round(e?.writes_per_batch ?? 32))) }));
  process.stderr.write(`(f) storage floor: ${f.calls_per_s} calls/s, ${f.cpu_us_per_call} µs CPU per call\n`);
}

/** (d)'s large fixture (`BENCH_DECISION_GRANTS`, `BENCH_DECISION_AUDIT_ROWS`: default 100 000 and 1 000 000). */
const dGrants = Number(process.env['BENCH_DECISION_GRANTS'] ?? 100_000);
const dRows = Number(process.env['BENCH_DECISION_AUDIT_ROWS'] ?? 1_000_000);
const d = wants('d') ? await decision(dGrants, dRows) : null;
const dSmall = wants('d') ? await decision(10, 0) : null;
const h: OverheadResult[] | null = wants('h') ? await runOverhead() : null;
const growth: GrowthResult | null = wants('growth') ? await runGrowth(callers, denied, body) : null;
const pg: PostgresResult | null = wants('pg') ? await runPostgres(callers, body) : null;

const find = (prefix: string) => http.find((x) => x.name.startsWith(prefix));
const targets = targetRows({
  eCpuUs: e?.cpu_us_per_call,
  fCpuUs: f?.cpu_us_per_call,
  bReqS: find('(b)')?.requests_per_s,
  gReqS: find('(g)')?.requests_per_s,
  h16: h?.find((x) => x.callers === 16),
  dSteps2to12P50Us: d?.steps2_12.p50_us,
  iCedarP50Us: d?.cedar.p50_us,
  bGrowthReqS: growth?.b.requests_per_s,
  growthRows: growth?.rows,
  dP50At100k: d?.steps2_12.p50_us,
  dGrants: d?.grants,
  dP50At10: dSmall?.steps2_12.p50_us,
  queries: growth?.queries,
  verifyRowsS: growth?.verify.rows_per_s,
  servePeakRssBytes: growth?.serve_peak_rss_bytes,
});
const cpu = os.cpus();
const result = {
  at: new Date().toISOString(),
  host: { cpus: cpu.length, cpu: cpu[0]?.model ?? 'unknown', node: process.version, loadavg_start: loadAtStart, loadavg_end: loadAvg() },
  settings: { connections: CONNECTIONS, duration_s: DURATION_S, warmup_s: WARMUP_S, sqlite_synchronous: 'FULL', log_level: 'info', scenarios: [...ONLY] },
  http,
  calls_in_process: e,
  storage_floor: f,
  decision: d,
  decision_at_10_grants: dSmall,
  overhead: h,
  growth,
  postgres: pg,
  peak_rss_bytes: { server: serverRss, decision: d?.max_rss_bytes ?? null, serve_at_growth: growth?.serve_peak_rss_bytes ?? null },
  targets,
  total_s: Math.round((performance.now() - started) / 100) / 10,
};
fs.mkdirSync(RESULTS, { recursive: true });
const file = path.join(RESULTS, `${result.at.replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

const us = (p: Percentiles) => `p50 ${p.p50_us} µs, p99 ${p.p99_us} µs`;
const mb = (bytes: number | null | undefined) => (bytes ? `${Math.round(bytes / 2 ** 20)} MB` : 'n/a');
console.log(
  [
    '',
    ...http.map((x) => `${x.name}: ${x.requests_per_s} req/s, ${x.server_cpu_us_per_request} µs server CPU/req, p50 ${x.p50_ms} / p99 ${x.p99_ms} ms, non-2xx ${x.non_2xx}, errors ${x.errors}`),
    e && `(e) steps 2–14 in-process: ${e.calls_per_s} calls/s, ${e.cpu_us_per_call} µs CPU per call, ${e.writes_per_batch} writes per commit, ${e.batch_ms} ms per commit`,
    f && `(f) storage floor in-process: ${f.calls_per_s} calls/s, ${f.cpu_us_per_call} µs CPU per call, ${f.writes_per_commit} writes per commit`,
    d && `(d) at ${d.grants} grants (${d.candidates_per_decision} candidates), ${d.audit_rows} audit rows: steps 1–12 ${us(d)}; step 1 ${us(d.step1_signature)} (its two hashes ${us(d.step1_crypto_floor)}); steps 2–12 ${us(d.steps2_12)}`,
    d && `(i) Cedar ${d.cedar.version}, ${d.cedar.policies_per_set} policies per preparsed set: ${us(d.cedar)}`,
    dSmall && `(d) at ${dSmall.grants} grants (${dSmall.candidates_per_decision} candidate): steps 2–12 ${us(dSmall.steps2_12)}; (i) Cedar ${us(dSmall.cedar)}`,
    ...(h ?? []).map((x) => `(h) ${x.callers} caller(s): direct p50 ${x.direct.p50_ms} / p99 ${x.direct.p99_ms} ms; broker p50 ${x.broker.p50_ms} / p99 ${x.broker.p99_ms} ms; added p50 ${x.added_p50_ms} / p99 ${x.added_p99_ms} ms (two durable commits alone: p50 ${x.two_commits_p50_ms} ms)`),
    growth && `growth at ${growth.rows} audit rows and ${growth.grants} grants: (b) ${growth.b.requests_per_s} req/s (${growth.b.server_cpu_us_per_request} µs CPU/req); verify ${growth.verify.rows_per_s} rows/s; peak RSS serve ${mb(growth.serve_peak_rss_bytes)}, bench server after (b) ${mb(growth.b_server_peak_rss_bytes)}`,
    pg &&
      (pg.skipped !== null
        ? `PostgreSQL rows skipped: ${pg.skipped}`
        : [
            ...pg.rows.map((x) => `PostgreSQL ${x.replicas} replica(s): ${x.requests_per_s} req/s, p50 ${x.p50_ms} / p99 ${x.p99_ms} ms, non-2xx ${x.non_2xx}`),
            `PostgreSQL storage: ${pg.storage.bytes_per_call} bytes per call (${pg.storage.calls} calls, ${pg.storage.audit_rows} audit rows), ${pg.storage.connections} connections from 3 replicas`,
          ].join('\n')),
    `peak RSS: bench server ${mb(serverRss)}${d ? `, decision ${mb(d.max_rss_bytes)}` : ''}; machine load ${loadAtStart.join(' ')} at start, ${result.host.loadavg_end.join(' ')} at end`,
    `written to ${path.relative(PACKAGE_ROOT, file)} in ${result.total_s} s`,
    '',
  ]
    .filter((x): x is string => typeof x === 'string')
    .join('\n'),
);
console.table(targets);
