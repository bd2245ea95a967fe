/**
 * Bench (h): the latency a call adds by going through the broker. The same `GET /repos/acme/api`
 * answered by a local recorded GitHub (the `get-repository` recording of @octokit/fixtures, the
 * one the provider's tests replay, served for every request instead of once), requested:
 * - directly, by Octokit (`octokit.rest.repos.get`), as an agent holding the token would;
 * - through the broker: a signed `POST /v1/ext/calls` of `github.get_repo` (L1, a grant on
 *   `acme/*`), which runs the same Octokit request with the host's token.
 * At 1 and 16 concurrent callers (each its own group, so step 4's 5 pending per group never
 * refuses), `DURATION_S` seconds each after a 1 s warm-up, latencies measured by the caller.
 * Reports p50 and p99 of each, and what the broker adds (broker − direct), in ms. Beside them, the
 * floor of what it adds on this disk: a call is answered after two durable commits (its claim
 * before it runs, its outcome before the answer), so one caller waits at least two commits; timed
 * here as single-call commits of (f)'s rows (`BEGIN IMMEDIATE`, the claim, `COMMIT` with
 * `synchronous=FULL`), p50 in ms.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Octokit } from '@octokit/rest';
import { signRequest, type GroupCredential } from '../src/client/index.js';
import { closeDeps } from '../src/app/deps.js';
import { packagePath } from '../src/platform/paths.js';
import { FloorWriter, openFloorDb } from './floor.js';
import { child, DURATION_S, nextMessage, percentilesMs, stopServer } from './http.js';
import { benchDataDir, benchDeps, createGrants } from './setup.js';

/** The token the recordings expect. */
const FIXTURE_TOKEN = '0000000000000000000000000000000000000001';

/** (h)'s figures at one concurrency, ms. */
export interface OverheadResult {
  callers: number;
  direct: { p50_ms: number; p99_ms: number; n: number };
  broker: { p50_ms: number; p99_ms: number; n: number };
  added_p50_ms: number;
  added_p99_ms: number;
  broker_errors: number;
  /** Two durable commits on this disk, p50 (see the module note), ms. */
  two_commits_p50_ms: number;
}

/** p50 of 200 single-call durable commits of (f)'s claim rows on a temp file, ms. */
function commitP50Ms(): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-commit-'));
  const writer = new FloorWriter(openFloorDb(path.join(dir, 'floor.db')));
  const samples: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t0 = performance.now();
    writer.begin.run();
    writer.claim('call000', `c-${i}`, 'f'.repeat(64), Date.now());
    writer.commit.run();
    if (i >= 20) samples.push(performance.now() - t0);
  }
  writer.db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return percentilesMs(samples).p50_ms;
}

/** Serves the recorded `GET /repos/octokit-fixture-org/hello-world` answer for any `GET /repos/…`. */
async function recordedGitHub(): Promise<{ url: string; close(): void }> {
  const file = packagePath('node_modules/@octokit/fixtures/scenarios/api.github.com/get-repository/normalized-fixture.json');
  const [entry] = JSON.parse(fs.readFileSync(file, 'utf8')) as { response: unknown; headers: Record<string, string> }[];
  const body = JSON.stringify(entry!.response).replaceAll('octokit-fixture-org/hello-world', 'acme/api');
  const headers = { ...entry!.headers, 'content-length': String(Buffer.byteLength(body)), connection: 'keep-alive' };
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/repos/') || req.headers.authorization !== `token ${FIXTURE_TOKEN}`) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
      return;
    }
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

/** Runs `callers` loops of `once` for `seconds`; returns each call's latency in ms. */
async function timed(callers: number, seconds: number, once: (caller: number, n: number) => Promise<void>): Promise<number[]> {
  const until = performance.now() + seconds * 1000;
  const samples: number[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await once(caller, n++);
        samples.push(performance.now() - t0);
      }
    }),
  );
  return samples;
}

/** Runs (h) at 1 and 16 callers; starts and stops its own recorded GitHub and broker. */
export async function runOverhead(): Promise<OverheadResult[]> {
  const github = await recordedGitHub();
  const groups = Array.from({ length: 16 }, (_, i) => `gh${String(i).padStart(2, '0')}`);
  const { dataDir, env } = benchDataDir(groups);
  const setup = await benchDeps(env);
  await createGrants(setup, groups.map((group) => ({ group, provider: 'github', level: 1 as const, reason: 'bench', allowed_actions: null, denied_actions: null, resources: ['acme/*'] })));
  const creds: GroupCredential[] = groups.map((g) => ({ keyid: setup.keys.current(g).keyid, secret: setup.keys.current(g).secret }));
  await closeDeps(setup);
  const server = child('server', { ...env, BROKER_LOG_LEVEL: 'warn', BENCH_BROKER_ONLY: '1', BENCH_GITHUB_API_URL: github.url, BENCH_GITHUB_TOKEN: FIXTURE_TOKEN });
  const { broker } = await nextMessage<{ broker: string }>(server);
  const octokit = new Octokit({ baseUrl: github.url, auth: `token ${FIXTURE_TOKEN}` });
  const body = JSON.stringify({ action: 'github.get_repo', params: { owner: 'acme', repo: 'api' } });
  const run = Date.now().toString(36);
  let errors = 0;
  const direct = async () => {
    await octokit.rest.repos.get({ owner: 'acme', repo: 'api' });
  };
  const viaBroker = async (caller: number, n: number) => {
    const url = `${broker}/v1/ext/calls`;
    const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body, idempotencyKey: `h-${run}-${n}` }, creds[caller]!);
    const res = await fetch(url, { method: 'POST', headers, body });
    await res.arrayBuffer();
    if (res.status !== 200) errors += 1;
  };
  const results: OverheadResult[] = [];
  const twoCommits = Math.round(2 * commitP50Ms() * 100) / 100;
  try {
    for (const callers of [1, 16]) {
      errors = 0;
      await timed(callers, 1, direct);
      const d = percentilesMs(await timed(callers, DURATION_S, direct));
      await timed(callers, 1, viaBroker);
      errors = 0;
      const b = percentilesMs(await timed(callers, DURATION_S, viaBroker));
      const r = (x: number) => Math.round(x * 100) / 100;
      results.push({ callers, direct: d, broker: b, added_p50_ms: r(b.p50_ms - d.p50_ms), added_p99_ms: r(b.p99_ms - d.p99_ms), broker_errors: errors, two_commits_p50_ms: twoCommits });
      process.stderr.write(`(h) ${callers} caller(s): direct p50 ${d.p50_ms} / p99 ${d.p99_ms} ms, broker p50 ${b.p50_ms} / p99 ${b.p99_ms} ms (${errors} errors); two durable commits p50 ${twoCommits} ms\n`);
    }
  } finally {
    await stopServer(server);
    github.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}
