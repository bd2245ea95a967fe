/**
 * Bench (d): the decision path in-process, no HTTP — step 1 (`verifyBrokerSignature`: parse,
 * key lookup, digest, HMAC) and steps 2–12 (`CallService.evaluate`: shape, idempotency lookup,
 * backpressure, grant lookup in the grant index, steps 6–12) — over 100 000 grants and 1 000 000
 * audit rows, all made through the real services.
 *
 * Two processes, started by `bench/run.ts` with IPC: `BENCH_PHASE=setup` builds the database and
 * sends `{env}`; `BENCH_PHASE=measure` (with that `env` in `BENCH_ENV`) opens it as a broker would
 * at start-up (the grant index loads every grant), times each decision with `performance.now()`,
 * and sends its figures, so its peak RSS is the broker's, not the fixture builder's. Beside the
 * decisions it times step 1's floor on the same machine: the body's SHA-256 and the signature
 * base's HMAC alone, over the same requests, and (i), Cedar deciding the same candidate grants
 * (`bench/cedar.ts`). `BENCH_DECISION_GRANTS` and `BENCH_DECISION_AUDIT_ROWS` size the fixture
 * (the growth rows run it at 10 grants and no filler rows).
 */
import { randomUUID } from 'node:crypto';
import { CallService } from '../src/modules/calls/service.js';
import { extCalls } from '../src/modules/calls/schema.js';
import type { CreateGrantInput } from '../src/modules/grants/terms.js';
import { signRequest } from '../src/client/index.js';
import { ManualClock } from '../src/platform/clock.js';
import { immediate } from '../src/platform/db/open.js';
import { closeDeps } from '../src/app/deps.js';
import { sha256 } from '../src/protocol/digest.js';
import { hmacSha256, parseSignedFields, signatureBase } from '../src/protocol/signature.js';
import { SIGNATURE_LABEL } from '../src/protocol/profile.js';
import { verifyBrokerSignature } from '../src/platform/http/verify.js';
import { createLogger } from '../src/platform/log.js';
import { cedarAllows, cedarVersion, preparse } from './cedar.js';
import { benchDataDir, benchDeps, createGrants, fillAudit } from './setup.js';

/** Grants in the fixture (`BENCH_DECISION_GRANTS`, default 100 000), over at most 1 000 groups. */
const GRANTS = Number(process.env['BENCH_DECISION_GRANTS'] ?? 100_000);
const GROUPS = Math.min(1000, GRANTS);
/** Audit rows in the fixture (`BENCH_DECISION_AUDIT_ROWS`, default 1 000 000) and finished calls (a tenth of them). */
const AUDIT_ROWS = Number(process.env['BENCH_DECISION_AUDIT_ROWS'] ?? 1_000_000);
const CALL_ROWS = Math.floor(AUDIT_ROWS / 10);
/** Decisions timed by Cedar, (i): it is about 100 times slower than steps 2–12. */
const CEDAR_ITERATIONS = 10_000;
const REQUESTS = 10_000;
const WARMUP = 20_000;
const ITERATIONS = 100_000;
/** The fixture's clock: grants are made and decisions taken at this instant. */
const NOW = Date.UTC(2026, 0, 1);

const groups = Array.from({ length: GROUPS }, (_, i) => `g${String(i).padStart(4, '0')}`);

/** Grant `i`: group `i mod 1000`; a third each for bench, github and cloudlogs; mixed terms. */
function grantTerms(i: number): CreateGrantInput {
  const group = groups[i % GROUPS]!;
  const k = Math.floor(i / GROUPS);
  const base = { group, reason: 'bench', allowed_actions: null, denied_actions: null, resources: null } as const;
  switch (k % 3) {
    case 0: {
      const variant = Math.floor(k / 3) % 4;
      if (variant === 0) return { ...base, provider: 'bench', level: 1, resources: ['acme/*'] };
      if (variant === 1) return { ...base, provider: 'bench', level: 1, allowed_actions: ['bench.noop'], resources: [`team-${k}/*`] };
      if (variant === 2) return { ...base, provider: 'bench', level: 1, allowed_actions: ['bench.*'], denied_actions: ['bench.admin_*'] };
      return { ...base, provider: 'bench', level: 2, allowed_actions: ['bench.admin_reset'], ttl_s: 7 * 24 * 3600 };
    }
    case 1:
      return { ...base, provider: 'github', level: 1, allowed_actions: ['github.get_*'], resources: [`org-${k}/*`] };
    default:
      return { ...base, provider: 'cloudlogs', level: 1, resources: [`project-${k}`] };
  }
}

/** Builds the fixture database; returns its environment. */
async function setup(): Promise<Record<string, string>> {
  const { env } = benchDataDir(groups);
  const clock = new ManualClock(NOW);
  const deps = await benchDeps(env, { clock });
  await createGrants(deps, Array.from({ length: GRANTS }, (_, i) => grantTerms(i)));
  fillAudit(deps, AUDIT_ROWS - (deps.db.sqlite.prepare('SELECT COUNT(*) AS n FROM gov_activities').get() as { n: number }).n);
  // Finished calls, written as rows (the fixture, not the call path), 500 per INSERT.
  immediate(deps.db, () => {
    for (let from = 0; from < CALL_ROWS; from += 500) {
      const rows = Array.from({ length: Math.min(500, CALL_ROWS - from) }, (_, j) => ({
        group: groups[(from + j) % GROUPS]!, requestId: `old-${from + j}`, fingerprint: 'f'.repeat(64), action: 'bench.noop', level: 1, resource: 'acme/api',
        summary: 'noop on acme/api', taskId: null, grantId: 'grt_bench', status: 'succeeded', httpStatus: 200, response: '{}', receipt: '{}', attempts: 1,
        createdAt: clock.now(), finishedAt: clock.now(), durationMs: 0, instanceId: deps.instanceId,
      }));
      deps.db.orm.insert(extCalls).values(rows).run();
    }
  });
  await closeDeps(deps);
  return env;
}

/** Opens the fixture like a starting broker and times decisions; returns the figures. */
async function measure(env: Record<string, string>) {
  const started = performance.now();
  const clock = new ManualClock(NOW);
  const deps = await benchDeps(env, { clock });
  const grantsLoaded = (deps.grants.candidates(groups[0]!, 'bench'), deps.grants.size);
  const auditRows = (deps.db.sqlite.prepare('SELECT COUNT(*) AS n FROM gov_activities').get() as { n: number }).n;
  const loadS = (performance.now() - started) / 1000;
  // Pre-signed requests (signing is the agent's cost, not the broker's).
  const body = new TextEncoder().encode(JSON.stringify({ action: 'bench.noop', params: { resource: 'acme/api' } }));
  const url = 'http://127.0.0.1:8787/v1/ext/calls';
  const requests = Array.from({ length: REQUESTS }, (_, j) => {
    const key = deps.keys.current(groups[j % GROUPS]!);
    const headers = signRequest(
      { method: 'POST', url, headers: { 'content-type': 'application/json' }, body, idempotencyKey: `d-${randomUUID()}` },
      { keyid: key.keyid, secret: key.secret },
      Math.floor(clock.now() / 1000),
    );
    return { method: 'POST', url, headers: new Headers(headers) };
  });

  const service = new CallService(deps);
  const verifyDeps = { keys: deps.keys, clock, clockSkewS: deps.config.clockSkewS };
  const log = createLogger('silent');
  // Per decision, in µs: step 1 (signature), steps 2–12 (evaluate), and both.
  const step1 = new Float64Array(ITERATIONS);
  const steps2to12 = new Float64Array(ITERATIONS);
  const all = new Float64Array(ITERATIONS);
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const req = requests[i % REQUESTS]!;
    const t0 = performance.now();
    const v = verifyBrokerSignature(req, body, verifyDeps);
    const t1 = performance.now();
    const ev = service.evaluate({ group: v.group, keyid: v.keyid, requestId: v.idempotencyKey!, rawBody: body, bodySha256: v.bodySha256, log }, clock.now());
    const t2 = performance.now();
    if (ev.kind !== 'allowed') throw new Error(`the bench decision was not allowed: ${JSON.stringify(ev)}`);
    if (i < WARMUP) continue;
    step1[i - WARMUP] = (t1 - t0) * 1000;
    steps2to12[i - WARMUP] = (t2 - t1) * 1000;
    all[i - WARMUP] = (t2 - t0) * 1000;
  }
  /** p50, p99, p99.9, mean and max of a sample, in µs (rounded to 0.1). */
  function stats(samples: Float64Array) {
    samples.sort();
    const r = (x: number) => Math.round(x * 10) / 10;
    const pct = (p: number) => r(samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    return { p50_us: pct(50), p99_us: pct(99), p999_us: pct(99.9), mean_us: r(mean), max_us: r(samples[samples.length - 1]!) };
  }
  const maxRssBytes = process.resourceUsage().maxRSS * 1024; // before the floor's own arrays

  // The floor of step 1 on this machine, measured in the same process: only the two hashes no
  // verification can skip, SHA-256 of the body (Content-Digest) and the HMAC of each request's
  // signature base (computed beforehand), timed the same way.
  const bases = requests.map((req) => {
    const fields = parseSignedFields(req.headers.get('signature-input'), req.headers.get('signature'), SIGNATURE_LABEL)!;
    return { secret: deps.keys.lookup(fields.input.params.get('keyid') as string)!.secret, base: signatureBase(req, fields.input.components, fields.input.signatureParams) };
  });
  const hashes = new Float64Array(ITERATIONS);
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const { secret, base } = bases[i % REQUESTS]!;
    const t0 = performance.now();
    sha256(body);
    hmacSha256(secret, base);
    const t1 = performance.now();
    if (i >= WARMUP) hashes[i - WARMUP] = (t1 - t0) * 1000;
  }
  // (i) Cedar over the same candidates, for the same requests' groups, in this process.
  const byGroup = new Map(groups.map((g) => [g, deps.grants.candidates(g, 'bench')]));
  const policies = preparse(byGroup);
  const cedarTimes = new Float64Array(CEDAR_ITERATIONS);
  for (let i = 0; i < WARMUP / 10 + CEDAR_ITERATIONS; i++) {
    const group = groups[i % GROUPS]!;
    const t0 = performance.now();
    const allowed = cedarAllows(group, 'bench.noop', 1, 'acme/api', clock.now());
    const t1 = performance.now();
    if (!allowed) throw new Error(`cedar refused what steps 2–12 allowed for ${group}`);
    if (i >= WARMUP / 10) cedarTimes[i - WARMUP / 10] = (t1 - t0) * 1000;
  }
  const total = stats(all);
  const result = {
    iterations: ITERATIONS,
    grants: grantsLoaded,
    candidates_per_decision: deps.grants.candidates(groups[0]!, 'bench').length,
    audit_rows: auditRows,
    call_rows: CALL_ROWS,
    ...total,
    decisions_per_s: Math.round(1e6 / total.mean_us),
    step1_signature: stats(step1),
    steps2_12: stats(steps2to12),
    step1_crypto_floor: stats(hashes),
    cedar: { ...stats(cedarTimes), iterations: CEDAR_ITERATIONS, policies_per_set: policies.get(groups[0]!) ?? 0, version: cedarVersion() },
    load_s: Math.round(loadS * 10) / 10,
    max_rss_bytes: maxRssBytes,
  };
  await closeDeps(deps);
  return result;
}

if (process.env['BENCH_PHASE'] === 'setup') {
  const started = performance.now();
  const env = await setup();
  process.send!({ env, setup_s: Math.round((performance.now() - started) / 1000) });
} else {
  process.send!(await measure(JSON.parse(process.env['BENCH_ENV'] ?? '{}') as Record<string, string>));
}
