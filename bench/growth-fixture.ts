/**
 * The growth fixture: a broker data directory holding `BENCH_GROWTH_ROWS` audit rows (default
 * 10 000 000) and `BENCH_GROWTH_GRANTS` grants (default 100 000), built once and cached under
 * `bench/.cache/growth-<rows>-<grants>/` (gitignored), then copied for each run, so runs start
 * from the same bytes and only the first one pays for the build.
 *
 * Built in two parts: first the broker itself (`createDeps`) makes the data directory with (b)'s
 * groups, their keys and their grants, exactly as `bench/run.ts` does for the empty database;
 * then plain SQL fills the rest in large transactions (`synchronous=OFF` while building only):
 * filler grants of 1 000 other groups, each with its `grant.created` audit row (a fifth of them
 * revoked, with their `grant.revoked` row), then pairs of `call.claimed`/`call.succeeded` rows up
 * to the row count. Every row continues the hash chain with `storedActivityHash`
 * (`src/platform/audit/chain.ts`) over its canonical `detail` text, so `broker audit verify`
 * accepts the whole trail. The rows' times are spread over the year before the build.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalDetail, GENESIS_HASH, storedActivityHash } from '../src/platform/audit/chain.js';
import { closeDeps } from '../src/app/deps.js';
import { PACKAGE_ROOT } from '../src/platform/paths.js';
import { benchDataDir, benchDeps, createGrants } from './setup.js';
import type { CreateGrantInput } from '../src/modules/grants/terms.js';

/** Audit rows of the growth fixture (`BENCH_GROWTH_ROWS`, default 10 000 000). */
export const GROWTH_ROWS = Number(process.env['BENCH_GROWTH_ROWS'] ?? 10_000_000);
/** Grants of the growth fixture (`BENCH_GROWTH_GRANTS`, default 100 000). */
export const GROWTH_GRANTS = Number(process.env['BENCH_GROWTH_GRANTS'] ?? 100_000);
const CACHE = path.join(PACKAGE_ROOT, 'bench/.cache');
const FILL_GROUPS = 1000;
const YEAR_MS = 365 * 24 * 3600 * 1000;

/** A copy of the fixture: its data directory and the broker environment pointing at it. */
export interface GrowthCopy {
  dataDir: string;
  env: Record<string, string>;
  rows: number;
  grants: number;
  /** Seconds the cached template took to build (0 when it was already cached) and to copy. */
  build_s: number;
  copy_s: number;
}

/** The grants (b)'s groups hold in both databases: the empty one and the grown one. */
export function benchGrants(callers: string[], denied: string[]): CreateGrantInput[] {
  return [
    ...callers.map((group) => ({ group, provider: 'bench', level: 1 as const, reason: 'bench', allowed_actions: null, denied_actions: null, resources: null })),
    ...denied.map((group) => ({ group, provider: 'bench', level: 1 as const, reason: 'bench', allowed_actions: null, denied_actions: ['bench.noop'], resources: null })),
  ];
}

/**
 * Returns a fresh copy of the cached template for `groups` (building it first when missing).
 * @param groups (b)'s caller groups and denied groups, whose grants the broker makes.
 */
export async function growthCopy(callers: string[], denied: string[]): Promise<GrowthCopy> {
  const template = path.join(CACHE, `growth-${GROWTH_ROWS}-${GROWTH_GRANTS}`);
  let buildS = 0;
  if (!fs.existsSync(path.join(template, 'complete'))) {
    const started = performance.now();
    fs.rmSync(template, { recursive: true, force: true });
    await buildTemplate(template, callers, denied);
    buildS = Math.round((performance.now() - started) / 1000);
  }
  const started = performance.now();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-growth-'));
  fs.cpSync(template, dataDir, { recursive: true });
  fs.rmSync(path.join(dataDir, 'complete'));
  const copyS = Math.round((performance.now() - started) / 100) / 10;
  const env = { ...(JSON.parse(fs.readFileSync(path.join(template, 'env.json'), 'utf8')) as Record<string, string>), BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(dataDir, 'policies') };
  return { dataDir, env, rows: GROWTH_ROWS, grants: GROWTH_GRANTS, build_s: buildS, copy_s: copyS };
}

async function buildTemplate(template: string, callers: string[], denied: string[]): Promise<void> {
  process.stderr.write(`growth: building ${GROWTH_ROWS} audit rows and ${GROWTH_GRANTS} grants into ${path.relative(PACKAGE_ROOT, template)} (once)…\n`);
  const { dataDir, env } = benchDataDir([...callers, ...denied]);
  const deps = await benchDeps(env);
  await createGrants(deps, benchGrants(callers, denied));
  const dbPath = deps.db.path;
  await closeDeps(deps);

  const db = new Database(dbPath);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1000000');
  const head = db.prepare('SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_HASH;
  const existingGrants = (db.prepare('SELECT count(*) AS n FROM grants').get() as { n: number }).n;
  const insertAudit = db.prepare('INSERT INTO gov_activities (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const insertGrant = db.prepare(
    `INSERT INTO grants (id, "group", provider, level, allowed_actions, denied_actions, resources, reason, requested_by, status, ttl_s, digest, created_at, updated_at, activated_at, expires_at, revoked_at, revoked_by, revoke_reason)
     VALUES (?, ?, ?, ?, ?, NULL, ?, 'growth fixture', 'operator:bench', ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const fillGrants = Math.max(0, GROWTH_GRANTS - existingGrants);
  const grantRows = fillGrants + Math.floor(fillGrants / 5); // created, and revoked for one in five
  const callPairs = Math.max(0, Math.floor((GROWTH_ROWS - seq - grantRows) / 2));
  const total = grantRows + callPairs * 2;
  const start = Date.now() - YEAR_MS;
  const step = YEAR_MS / Math.max(1, total);
  const audit = (actor: string, kind: string, subject: string, detail: Record<string, unknown>) => {
    seq += 1;
    const ts = new Date(Math.floor(start + (seq - 1) * step)).toISOString();
    const text = canonicalDetail(detail);
    const hash = storedActivityHash(prev, { seq, ts, actor, kind, subject, detail: text });
    insertAudit.run(seq, ts, actor, kind, subject, text, prev, hash);
    prev = hash;
    return Date.parse(ts);
  };
  const inBatches = (count: number, each: (i: number) => void) => {
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) each(i);
    });
    for (let from = 0; from < count; from += 200_000) batch(from, Math.min(count, from + 200_000));
  };
  // Filler grants interleaved with their audit rows, then the calls.
  inBatches(fillGrants, (i) => {
    const id = `grt_growth${String(i).padStart(9, '0')}`;
    const group = `fill${String(i % FILL_GROUPS).padStart(4, '0')}`;
    const provider = ['github', 'cloudlogs', 'bench'][i % 3]!;
    const resources = JSON.stringify([`org-${i % 97}/*`]);
    const digest = createHash('sha256').update(id).digest('hex');
    const at = audit('operator:bench', 'grant.created', id, { group, provider, level: 1, resources: [`org-${i % 97}/*`], reason: 'growth fixture', digest, status: 'active' });
    const revoked = i % 5 === 0;
    const expires = i % 7 === 0 ? at + 30 * 24 * 3600 * 1000 : null;
    insertGrant.run(id, group, provider, 1, null, resources, revoked ? 'revoked' : 'active', digest, at, at, at, expires, revoked ? at + 3600_000 : null, revoked ? 'operator:bench' : null, revoked ? 'growth fixture' : null);
    if (revoked) audit('operator:bench', 'grant.revoked', id, { group, provider, level: 1, reason: 'growth fixture', previous_status: 'active' });
  });
  inBatches(callPairs, (i) => {
    const group = `fill${String(i % FILL_GROUPS).padStart(4, '0')}`;
    const subject = `call:${group}:growth-${i}`;
    const grantId = `grt_growth${String(i % Math.max(1, fillGrants)).padStart(9, '0')}`;
    audit(group, 'call.claimed', subject, { action: 'bench.noop', grant_id: grantId, resource: 'bench/noop', steps: 'signature:pass request:pass idempotency:pass switch:pass backpressure:pass grant:pass expiry:pass level:pass deny_list:pass allow_list:pass resource:pass task:skip approval:skip provider:pass claim:pass', summary: 'noop on bench/noop', task_id: null });
    audit(group, 'call.succeeded', subject, { action: 'bench.noop', attempts: 1, duration_ms: 1, http_status: 200 });
    if (i % 1_000_000 === 999_999) process.stderr.write(`growth: ${seq} rows\n`);
  });
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  fs.mkdirSync(CACHE, { recursive: true });
  fs.renameSync(dataDir, template);
  fs.writeFileSync(path.join(template, 'env.json'), JSON.stringify(env));
  fs.writeFileSync(path.join(template, 'complete'), `${seq} rows\n`);
}
