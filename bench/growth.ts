/**
 * The growth rows: the broker at `BENCH_GROWTH_ROWS` audit rows and `BENCH_GROWTH_GRANTS` grants
 * (`bench/growth-fixture.ts`, default 10 000 000 and 100 000), on a fresh copy of the cached fixture:
 * - (b) again, the same signed L1 calls with the same connections and duration, from the bench
 *   server (the real broker with the bench provider), and that process's peak RSS after it;
 * - a real `broker serve` process (the compiled CLI) on the copy: three auditor queries through
 *   the real HTTP routes with an auditor bearer token, one after the other, p50 and p99 in ms:
 *   the grants active at an instant half a year back (`GET /v1/grants?at=`, a page of 100), one
 *   revoked grant with its timeline (`GET /v1/grants/{id}`), a page of audit rows of one kind
 *   (`GET /v1/audit?kind=grant.revoked`, 100); then its peak RSS (`VmHWM`);
 * - `broker audit verify` (the compiled CLI) over the copy, in rows per second of wall time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { GroupCredential } from '../src/client/index.js';
import { closeDeps } from '../src/app/deps.js';
import { PACKAGE_ROOT } from '../src/platform/paths.js';
import { growthCopy } from './growth-fixture.js';
import { child, figures, load, nextMessage, peakRss, percentilesMs, signedCalls, stopServer, type HttpResult } from './http.js';
import { benchDeps } from './setup.js';

/** Auditor requests per query (after 10 unmeasured). */
const QUERIES = Number(process.env['BENCH_GROWTH_QUERIES'] ?? 200);

/** The growth figures. */
export interface GrowthResult {
  rows: number;
  grants: number;
  fixture_build_s: number;
  fixture_copy_s: number;
  b: HttpResult;
  b_server_peak_rss_bytes: number | null;
  serve_peak_rss_bytes: number | null;
  queries: Record<'grants_as_of' | 'grant_timeline' | 'audit_page_by_kind', { p50_ms: number; p99_ms: number; n: number }>;
  verify: { rows: number; seconds: number; rows_per_s: number; output: string };
}

/** `node <the compiled CLI> <args>`, or the TypeScript entry through tsx when the bench runs from source. */
function brokerArgs(args: string[]): string[] {
  const compiled = import.meta.filename.endsWith('.js');
  return compiled ? [path.join(PACKAGE_ROOT, 'dist/src/main.js'), ...args] : ['--import', 'tsx', path.join(PACKAGE_ROOT, 'src/main.ts'), ...args];
}

/** Starts `broker serve` on an ephemeral port; resolves with its process and URL once it logs "broker listening". */
function startServe(env: Record<string, string>): Promise<{ proc: ReturnType<typeof spawn>; url: string }> {
  const proc = spawn(process.execPath, brokerArgs(['serve']), { cwd: PACKAGE_ROOT, env: { ...process.env, ...env, BROKER_PORT: '0', BROKER_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"broker listening"'));
      if (line) resolve({ proc, url: (JSON.parse(line) as { url: string }).url });
      if (out.length > 1e6) out = out.slice(-1e5);
    });
    proc.once('exit', (code) => reject(new Error(`broker serve exited with ${code} before listening`)));
  });
}

/** Times `QUERIES` GETs of `url` with the bearer token, one at a time. @throws Error on a non-200 answer. */
async function timeQuery(url: string, token: string): Promise<{ p50_ms: number; p99_ms: number; n: number }> {
  const samples: number[] = [];
  for (let i = 0; i < 10 + QUERIES; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
    if (i >= 10) samples.push(ms);
  }
  return percentilesMs(samples);
}

/** Runs the growth rows for (b)'s groups; removes its copy afterwards. */
export async function runGrowth(callers: string[], denied: string[], body: string): Promise<GrowthResult> {
  const copy = await growthCopy(callers, denied);
  process.stderr.write(`growth: ${copy.rows} audit rows, ${copy.grants} grants (copied in ${copy.copy_s} s)\n`);
  try {
    const deps = await benchDeps(copy.env);
    const creds: GroupCredential[] = callers.map((g) => ({ keyid: deps.keys.current(g).keyid, secret: deps.keys.current(g).secret }));
    const { token } = await deps.tokens.issue('auditor', 'bench', 3600, 'operator:bench');
    const revoked = deps.db.sqlite.prepare("SELECT id FROM grants WHERE status = 'revoked' ORDER BY id LIMIT 1").pluck().get() as string | undefined;
    const someGrant = revoked ?? (deps.db.sqlite.prepare('SELECT id FROM grants LIMIT 1').pluck().get() as string);
    await closeDeps(deps);

    const server = child('server', { ...copy.env, BROKER_LOG_LEVEL: 'info', BENCH_BROKER_ONLY: '1' });
    const { broker } = await nextMessage<{ broker: string }>(server);
    const b = figures(`(b) signed L1 call at ${copy.rows} audit rows`, await load(server, '(b) growth', { url: broker, requests: [{ setupRequest: signedCalls('(b) growth', broker, creds, body) }] }), null);
    const bRss = peakRss(server.pid!);
    await stopServer(server);

    const serve = await startServe(copy.env);
    const asOf = new Date(Date.now() - 182 * 24 * 3600 * 1000).toISOString();
    let queries: GrowthResult['queries'];
    let serveRss: number | null;
    try {
      queries = {
        grants_as_of: await timeQuery(`${serve.url}/v1/grants?at=${encodeURIComponent(asOf)}&limit=100`, token),
        grant_timeline: await timeQuery(`${serve.url}/v1/grants/${someGrant}`, token),
        audit_page_by_kind: await timeQuery(`${serve.url}/v1/audit?kind=grant.revoked&limit=100`, token),
      };
      serveRss = peakRss(serve.proc.pid!);
    } finally {
      const exited = new Promise((resolve) => serve.proc.once('exit', resolve));
      serve.proc.kill('SIGTERM');
      await exited;
    }
    process.stderr.write(`growth: queries ${JSON.stringify(queries)}; serve peak RSS ${serveRss}\n`);

    const started = performance.now();
    const verify = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, brokerArgs(['audit', 'verify']), { cwd: PACKAGE_ROOT, env: { ...process.env, ...copy.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.once('exit', (code) => resolve({ code, out }));
    });
    const seconds = (performance.now() - started) / 1000;
    if (verify.code !== 0) throw new Error(`broker audit verify failed: ${verify.out}`);
    const rows = Number(/(\d+) rows verified/.exec(verify.out)?.[1] ?? 0);
    process.stderr.write(`growth: audit verify ${rows} rows in ${seconds.toFixed(1)} s\n`);
    return {
      rows: copy.rows,
      grants: copy.grants,
      fixture_build_s: copy.build_s,
      fixture_copy_s: copy.copy_s,
      b,
      b_server_peak_rss_bytes: bRss,
      serve_peak_rss_bytes: serveRss,
      queries,
      verify: { rows, seconds: Math.round(seconds * 10) / 10, rows_per_s: Math.round(rows / seconds), output: verify.out.trim().slice(0, 300) },
    };
  } finally {
    fs.rmSync(copy.dataDir, { recursive: true, force: true });
  }
}
