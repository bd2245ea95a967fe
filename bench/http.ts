/**
 * The bench's HTTP plumbing: child processes with IPC, pre-signed requests for autocannon, one
 * loaded scenario with the server's CPU over it, and the per-scenario figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { signRequest, type GroupCredential } from '../src/client/index.js';
import { PACKAGE_ROOT } from '../src/platform/paths.js';

/** Seconds per HTTP scenario (`BENCH_DURATION_S`, default 8), after a 2 s warm-up. */
export const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 8);
/** Connections per HTTP scenario (`BENCH_CONNECTIONS`, default 32). */
export const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
export const WARMUP_S = 2;
/** Requests signed per second of scenario ahead of the load; more are signed on the fly (`BENCH_POOL_RATE`). */
const POOL_RATE = Number(process.env['BENCH_POOL_RATE'] ?? 10000);

/** One HTTP scenario's figures. Latencies in ms, throughput in req/s. */
export interface HttpResult {
  name: string;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  non_2xx: number;
  errors: number;
  /** Server CPU (user + system) per completed request, µs. */
  server_cpu_us_per_request: number;
  ratio_to_a: number | null;
}

/**
 * Starts a sibling bench script as a child process with IPC. `npm run bench` runs the compiled
 * build (`dist/bench/`), so the children run the same JavaScript as `npm start`; under tsx the
 * `.ts` sources are loaded through tsx instead.
 * @param name the script's base name, e.g. `'server'`.
 */
export function child(name: string, env: Record<string, string>, execArgv: string[] = []): ChildProcess {
  const compiled = import.meta.filename.endsWith('.js');
  const script = path.join(import.meta.dirname, `${name}.${compiled ? 'js' : 'ts'}`);
  return spawn(process.execPath, [...execArgv, ...(compiled ? [] : ['--import', 'tsx']), script], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

/** The next IPC message of `proc`; rejects when it exits first. */
export function nextMessage<T>(proc: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${proc.spawnargs.join(' ')} exited with ${code}`));
    proc.once('message', (m) => {
      proc.off('exit', onExit);
      resolve(m as T);
    });
    proc.once('exit', onExit);
  });
}

/** Peak resident set (VmHWM) of a live process, bytes, from /proc/<pid>/status; null where there is no /proc. */
export function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** One request as autocannon sends it. */
export interface SignedRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * A `setupRequest` that hands out `sign(0)`, `sign(1)`, … in turn: the first
 * `POOL_RATE × (warm-up + duration)` are signed now, before the scenario starts, so the load
 * generator's own crypto (on the same cores as the server) is not part of the measurement; the
 * rest, if the scenario outlasts the pool, are signed on the fly. Each `n` is used once, so every
 * POST keeps a fresh Idempotency-Key; `created` stays well within the 300 s skew.
 */
export function presigned(name: string, sign: (n: number) => SignedRequest): autocannon.Request['setupRequest'] {
  const size = Math.ceil(POOL_RATE * (WARMUP_S + DURATION_S));
  const pool = Array.from({ length: size }, (_, n) => sign(n));
  let n = 0;
  let warned = false;
  return (req) => {
    let r: SignedRequest;
    if (n < size) {
      r = pool[n]!;
      pool[n] = undefined as unknown as SignedRequest; // let the sent ones go
    } else {
      r = sign(n);
      if (!warned) process.stderr.write(`${name}: the pre-signed pool (${size}) ran out; signing the rest on the fly\n`);
      warned = true;
    }
    n += 1;
    return { ...req, ...r };
  };
}

/** POST /v1/ext/calls as the next group in turn, each with a fresh Idempotency-Key. */
export function signedCalls(name: string, base: string, creds: GroupCredential[], body: string): autocannon.Request['setupRequest'] {
  const url = `${base}/v1/ext/calls`;
  const run = `${Date.now().toString(36)}-${name.replace(/[^a-z0-9]/gi, '')}`;
  const created = Math.floor(Date.now() / 1000);
  return presigned(name, (n) => {
    const cred = creds[n % creds.length]!;
    const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body, idempotencyKey: `${run}-${n}` }, cred, created);
    return { method: 'POST', path: '/v1/ext/calls', headers, body };
  });
}

/** GET of `path` as the next group in turn (the floor of any signed request). */
export function signedGets(name: string, base: string, creds: GroupCredential[], path: string): autocannon.Request['setupRequest'] {
  const created = Math.floor(Date.now() / 1000);
  return presigned(name, (n) => ({ method: 'GET', path, headers: signRequest({ method: 'GET', url: `${base}${path}` }, creds[n % creds.length]!, created) }));
}

/** One scenario's autocannon result and the server's CPU over its measured seconds (µs). */
export interface Loaded {
  r: autocannon.Result;
  cpuUs: number;
}

/** The server process's CPU so far (user + system, µs), asked over IPC. */
async function serverCpuUs(server: ChildProcess): Promise<number> {
  server.send('cpu');
  return (await nextMessage<{ cpuUs: number }>(server)).cpuUs;
}

/** Runs a 2 s warm-up, then the measured `DURATION_S` seconds, of one scenario against `server`. */
export async function load(server: ChildProcess, name: string, opts: autocannon.Options): Promise<Loaded> {
  await autocannon({ ...opts, connections: CONNECTIONS, duration: WARMUP_S });
  const cpu0 = await serverCpuUs(server);
  const r = await autocannon({ ...opts, connections: CONNECTIONS, duration: DURATION_S });
  const cpuUs = (await serverCpuUs(server)) - cpu0;
  process.stderr.write(`${name}: ${Math.round(r.requests.average)} req/s, ${Math.round(cpuUs / Math.max(1, r.requests.total))} µs server CPU per request\n`);
  return { r, cpuUs };
}

/** The figures of one loaded scenario; `baseline` is (a)'s req/s, for the ratio. */
export function figures(name: string, { r, cpuUs }: Loaded, baseline: number | null): HttpResult {
  return {
    name,
    requests_per_s: Math.round(r.requests.average),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    requests: r.requests.total,
    non_2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    server_cpu_us_per_request: Math.round(cpuUs / Math.max(1, r.requests.total)),
    ratio_to_a: baseline ? Math.round((r.requests.average / baseline) * 1000) / 1000 : null,
  };
}

/** Stops a bench server child (IPC `'stop'`) and waits for its exit. */
export async function stopServer(server: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.send('stop');
  await exited;
}

/** p50 and p99 of samples in ms, rounded to 0.01 ms. */
export function percentilesMs(samples: number[]): { p50_ms: number; p99_ms: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 100) / 100;
  return { p50_ms: at(0.5), p99_ms: at(0.99), n: s.length };
}
