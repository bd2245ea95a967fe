/**
 * Rate limits and daily quotas (`policies/limits.json`) through a real server on a real SQLite
 * file with the manual clock: the token bucket refuses 429 `rate_limited` with Retry-After until a
 * token is back; the daily hard quota refuses 429 `quota_exceeded` with Retry-After to the next
 * UTC day, also after a restart on the same data directory; the soft quota is audited once per day;
 * refused and replayed calls use up nothing; and the counters stay exact when another process
 * (a child `node` running the built store on the same database file) takes from the same quota
 * while the server answers calls.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { DAY_MS, dayStart, DEFAULT_LIMITS, loadLimits, matchingRules } from '../../src/modules/limits/policy.js';
import { call } from '../calls/helpers.js';
import { bearer, tokenFor } from '../grants/helpers.js';
import { testProvider, type TestProvider } from '../calls/provider.js';
import { policiesWith, REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { stepsOf } from './helpers.js';

const RULES = {
  rules: [
    { id: 'dev-reads', group: 'developer', action: 'test.read', per_minute: 2 },
    { id: 'sec-reads', group: 'security', action: 'test.read', daily_soft: 2, daily_hard: 3 },
    { id: 'main-reads', group: 'main', action: 'test.read', daily_hard: 20 },
  ],
};
/** 22:00 UTC: two hours before the quota window ends. */
const START = Date.UTC(2026, 0, 15, 22, 0, 0);

let tp: TestProvider;
let dataDir: string;
let policiesDir: string;
let broker: TestBroker;

const start = (startMs: number) => startBroker({ providers: [tp.provider], dataDir, startMs, env: { BROKER_POLICIES_DIR: policiesDir } });
const read = (group: string, key = randomUUID()) => call(broker, group, { action: 'test.read', params: { resource: 'acme/api' } }, key);
const counter = (key: string) =>
  (broker.deps.db.sqlite.prepare('SELECT count FROM limit_counters WHERE key = ? AND window_start = ?').get(key, dayStart(broker.clock.now())) as { count: number } | undefined)?.count ?? 0;
const auditRows = (kind: string) => broker.deps.db.sqlite.prepare('SELECT subject, detail FROM gov_activities WHERE kind = ? ORDER BY seq').all(kind) as { subject: string; detail: string }[];

beforeAll(async () => {
  tp = testProvider();
  dataDir = tempDir();
  policiesDir = policiesWith({ 'limits.json': RULES });
  broker = await start(START);
  for (const group of ['developer', 'security', 'main']) {
    const res = await broker.client('main').post('/v1/grants', { group, provider: 'test', level: 1, reason: 'limits tests', ttl_s: 7 * 24 * 3600 });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
});
afterAll(async () => {
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
});

describe('the rate limit (token bucket)', () => {
  it('refuses 429 rate_limited with Retry-After once the bucket is empty, counts no refused or replayed call, and admits again when a token is back', async () => {
    const first = randomUUID();
    expect((await read('developer', first)).status).toBe(200);
    expect((await read('developer')).status).toBe(200);
    const attempts = tp.attempts.length;

    const key = randomUUID();
    const refused = await read('developer', key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(refused.body).toMatchObject({ code: 'rate_limited', rule: 'dev-reads', limit: 60 / 30, window: 'minute' });
    expect(refused.body.receipt.decision).toBe('denied');
    expect(stepsOf(refused.body).slice(-3)).toEqual(['provider:pass', 'circuit:pass', 'limits:fail']);
    expect(tp.attempts.length).toBe(attempts);
    const denied = broker.deps.db.sqlite.prepare('SELECT kind, detail FROM gov_activities WHERE subject = ?').all(`call:developer:${key}`) as { kind: string; detail: string }[];
    expect(denied.map((r) => [r.kind, JSON.parse(r.detail).code])).toEqual([['call.denied', 'rate_limited']]);

    // A replay is answered before the limits: it neither is refused nor takes a token.
    const replay = await read('developer', first);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');

    // 29 s later still empty; at 30 s one token is back, and the refused key was not used up.
    broker.clock.advance(29_000);
    expect((await read('developer', key)).status).toBe(429);
    broker.clock.advance(1_000);
    expect((await read('developer', key)).status).toBe(200);
    expect((await read('developer')).status).toBe(429);
    expect(tp.attempts.length).toBe(attempts + 1);
  });
});

describe('the daily quotas', () => {
  it('audits the soft quota once, refuses 429 quota_exceeded with Retry-After to the next UTC day, and keeps the count across a restart', async () => {
    for (let i = 0; i < 3; i += 1) expect((await read('security')).status).toBe(200);
    const soft = auditRows('quota.soft_exceeded');
    expect(soft).toHaveLength(1);
    expect(soft[0]!.subject).toBe('limit:sec-reads|security');
    expect(JSON.parse(soft[0]!.detail)).toMatchObject({ rule: 'sec-reads', group: 'security', count: 3, daily_soft: 2, daily_hard: 3 });
    expect(broker.logs.filter((l) => l.includes('daily soft quota was exceeded') && l.includes('sec-reads'))).toHaveLength(1);

    const key = randomUUID();
    const refused = await read('security', key);
    expect(refused.status).toBe(429);
    const toMidnight = Math.ceil((dayStart(broker.clock.now()) + DAY_MS - broker.clock.now()) / 1000);
    expect(refused.headers.get('retry-after')).toBe(String(toMidnight));
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', rule: 'sec-reads', limit: 3, window: 'day', resets_at: new Date(dayStart(broker.clock.now()) + DAY_MS).toISOString() });
    expect(counter('sec-reads|security')).toBe(3); // the refusal counted nothing
    // A call refused earlier in the decision (no grant for this provider) counts nothing either.
    expect((await call(broker, 'security', { action: 'github.get_repo', params: { owner: 'acme', repo: 'api' } })).status).toBeGreaterThanOrEqual(400);
    expect(counter('sec-reads|security')).toBe(3);

    // A restart on the same data directory keeps the day's count.
    const now = broker.clock.now();
    await broker.stop();
    broker = await start(now);
    const again = await read('security', key);
    expect(again.status).toBe(429);
    expect(again.body.code).toBe('quota_exceeded');
    expect(auditRows('quota.soft_exceeded')).toHaveLength(1);

    // The next UTC day is a new window: the same key runs, and the soft notice comes again only past 2.
    broker.clock.advance(toMidnight * 1000);
    expect((await read('security', key)).status).toBe(200);
    expect(counter('sec-reads|security')).toBe(1);
    expect(auditRows('quota.soft_exceeded')).toHaveLength(1);
  });

  it('stays exact when another process takes from the same quota while the server answers calls', async () => {
    const dbPath = broker.deps.config.dbPath;
    const child = takeInChild(dbPath, broker.clock.now(), 15);
    const answers: number[] = [];
    for (let i = 0; i < 15; i += 1) answers.push((await read('main')).status);
    const childAdmitted = await child;
    const served = answers.filter((s) => s === 200).length;
    expect(answers.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(served + childAdmitted).toBe(20);
    expect(counter('main-reads|main')).toBe(20);

    // Operators see the day's usage of every process.
    const status = await bearer(broker, await tokenFor(broker, 'operator', 'limits-olga'), 'GET', '/v1/limits');
    expect(status.status).toBe(200);
    expect(status.body.configured).toBe(true);
    expect(status.body.usage).toContainEqual({ rule: 'main-reads', group: 'main', count: 20, soft_notified_at: null });
    expect(status.body.circuits).toEqual([{ provider: 'test', state: 'closed', opened_at: null }]);
  });
});

/**
 * Runs `n` takes of rule `main-reads` for group `main` at `nowMs` in a child `node` process, with
 * the built store (`dist/`, which `test/global-setup.ts` builds) on the same database file.
 * @returns how many it admitted.
 */
function takeInChild(dbPath: string, nowMs: number, n: number): Promise<number> {
  const dist = (p: string) => JSON.stringify(path.join(REPO_ROOT, 'dist/src', p));
  const script = `
    import { openDb } from ${dist('platform/db/open.js')};
    import { sqliteLimitStore } from ${dist('modules/limits/store.js')};
    const db = openDb({ path: ${JSON.stringify(dbPath)} });
    const store = sqliteLimitStore(db, { now: () => ${nowMs} });
    const rule = { id: 'main-reads', group: 'main', action: 'test.read', daily_hard: 20 };
    let admitted = 0;
    for (let i = 0; i < ${n}; i += 1) {
      if (store.takeNow('main', [{ rule, key: 'main-reads|main' }], ${nowMs}).kind === 'admitted') admitted += 1;
      await new Promise((r) => setTimeout(r, 5));
    }
    db.sqlite.close();
    process.stdout.write(String(admitted));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('limits.json at start-up', () => {
  it('absent: the conservative defaults for L2 and L3 actions, none for L1 reads', () => {
    const policy = loadLimits(tempDir());
    expect(policy).toBe(DEFAULT_LIMITS);
    const of = (level: 1 | 2 | 3) => matchingRules(policy, { group: 'developer', provider: 'github', action: 'github.x', level }).map((r) => [r.id, r.per_minute, r.daily_soft, r.daily_hard]);
    expect(of(1)).toEqual([]);
    expect(of(2)).toEqual([['default-l2', 60, 300, 1000]]);
    expect(of(3)).toEqual([['default-l3', 10, 20, 50]]);
    expect(policy.breaker).toEqual({ consecutiveFailures: 5, halfOpenAfterMs: 30_000 });
  });

  it('malformed: the broker does not start, and the error names the file and the field', async () => {
    const dir = policiesWith({ 'limits.json': { rules: [{ id: 'x', per_minute: 0 }] } });
    await expect(startBroker({ env: { BROKER_POLICIES_DIR: dir } })).rejects.toThrow(/limits\.json: rules\.0\.per_minute/);
  });
});
