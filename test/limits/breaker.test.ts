/**
 * The per-provider circuit breaker through a real server and a real HTTP GitHub fake (a local
 * server answering `GET /repos/{owner}/{repo}/issues/{n}` with the recorded GitHub answer of
 * `test/fixtures/github/get-issue.json`, or with 500 or 404 as the test says): 4xx answers never
 * open it; consecutive 5xx answers do (audited, gauge 1); then calls fail fast with 503
 * `provider_circuit_open` and Retry-After, the fake sees no request and no call row is written;
 * after `half_open_after_ms` one probe goes through; a failing probe opens it again, a succeeding
 * one closes it (audited, gauge 0). The half-open wait is real time (cockatiel reads `Date.now()`),
 * so the tests poll with a deadline instead of asserting durations.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { call, grant } from '../calls/helpers.js';
import { policiesWith, REPO_ROOT, startBroker, type TestBroker } from '../helpers/harness.js';
import { stepsOf } from './helpers.js';

const TOKEN = '0000000000000000000000000000000000000001';
const recorded = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/github/get-issue.json'), 'utf8'))[0] as { response: unknown };

/** The fake's answer mode and the requests it received. */
const fake = { mode: 'ok' as 'ok' | 'fail' | 'missing', requests: 0 };
let server: http.Server;
let broker: TestBroker;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    fake.requests += 1;
    const match = req.method === 'GET' && /^\/repos\/[^/]+\/[^/]+\/issues\/\d+$/.test(req.url ?? '');
    if (fake.mode === 'fail') res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"Server Error"}');
    else if (fake.mode === 'missing' || !match) res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
    else res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(recorded.response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  for (const k of ['GITHUB_TOKEN', 'GITHUB_API_URL'] as const) saved[k] = process.env[k];
  process.env['GITHUB_TOKEN'] = TOKEN;
  process.env['GITHUB_API_URL'] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const policiesDir = policiesWith({ 'limits.json': { rules: [], breaker: { consecutive_failures: 2, half_open_after_ms: 300 } } });
  broker = await startBroker({ env: { BROKER_POLICIES_DIR: policiesDir } });
  await grant(broker, { group: 'developer', provider: 'github', level: 1, resources: ['acme/*'] });
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const getIssue = (key = randomUUID()) => call(broker, 'developer', { action: 'github.get_issue', params: { owner: 'acme', repo: 'api', issue_number: 1 } }, key);
const circuitRows = () =>
  (broker.deps.db.sqlite.prepare("SELECT kind, detail FROM gov_activities WHERE kind LIKE 'provider.circuit_%' ORDER BY seq").all() as { kind: string; detail: string }[]).map((r) => ({
    kind: r.kind,
    provider: JSON.parse(r.detail).provider,
  }));
const gauge = async () => (await broker.deps.metrics.registry.getSingleMetric('broker_provider_circuit_state')!.get()).values.find((v) => v.labels['provider'] === 'github')?.value;
const callRows = (key: string) => (broker.deps.db.sqlite.prepare('SELECT COUNT(*) AS n FROM ext_calls WHERE request_id = ?').get(key) as { n: number }).n;

/** Calls until one is not refused by the open circuit (the probe), within a deadline; returns its answer. */
async function untilProbe(): Promise<Awaited<ReturnType<typeof getIssue>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await getIssue();
    if (res.status !== 503 || res.body.code !== 'provider_circuit_open') return res;
    if (Date.now() > deadline) throw new Error('the circuit never let a probe through');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the circuit breaker of a provider', () => {
  it('is not opened by 4xx answers, which are the caller\'s fault', async () => {
    fake.mode = 'missing';
    for (let i = 0; i < 3; i += 1) {
      const res = await getIssue();
      expect(res.status, JSON.stringify(res.body)).toBe(502);
      expect(res.body.provider_status).toBe(404);
    }
    expect(circuitRows()).toEqual([]);
    fake.mode = 'ok';
    const before = fake.requests;
    expect((await getIssue()).status).toBe(200);
    expect(fake.requests).toBe(before + 1);
  });

  it('opens after consecutive 5xx failures, then fails fast with 503 and sends nothing; a half-open probe follows; it closes once the fake recovers', async () => {
    fake.mode = 'fail';
    for (let i = 0; i < 2; i += 1) {
      const res = await getIssue();
      expect(res.status).toBe(502);
      expect(res.body.provider_status).toBe(500);
    }
    expect(circuitRows()).toEqual([{ kind: 'provider.circuit_opened', provider: 'github' }]);
    expect(await gauge()).toBe(1);

    const sent = fake.requests;
    const key = randomUUID();
    const fast = await getIssue(key);
    expect(fast.status).toBe(503);
    expect(fast.body).toMatchObject({ code: 'provider_circuit_open', provider: 'github', circuit: 'open' });
    expect(Number(fast.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(stepsOf(fast.body).slice(-2)).toEqual(['provider:pass', 'circuit:fail']);
    expect(fake.requests).toBe(sent);
    expect(callRows(key)).toBe(0);

    // Still failing: the half-open probe goes through, fails, and opens the circuit again.
    const failedProbe = await untilProbe();
    expect(failedProbe.status).toBe(502);
    expect(stepsOf(failedProbe.body)).toContain('circuit:pass');
    expect(failedProbe.body.receipt.steps.find((s: { step: string }) => s.step === 'circuit').note).toBe('github half-open probe');
    expect((await getIssue()).body.code).toBe('provider_circuit_open');
    expect(circuitRows().map((r) => r.kind)).toEqual(['provider.circuit_opened', 'provider.circuit_half_opened', 'provider.circuit_opened']);

    // Recovered: the next probe succeeds and closes the circuit; calls flow again.
    fake.mode = 'ok';
    const probe = await untilProbe();
    expect(probe.status, JSON.stringify(probe.body)).toBe(200);
    expect(circuitRows().map((r) => r.kind)).toEqual(['provider.circuit_opened', 'provider.circuit_half_opened', 'provider.circuit_opened', 'provider.circuit_half_opened', 'provider.circuit_closed']);
    expect(await gauge()).toBe(0);
    const after = fake.requests;
    expect((await getIssue()).status).toBe(200);
    expect(fake.requests).toBe(after + 1);
  });
});
