/**
 * Bench fixtures: a data directory with its own groups policy, grants made through the grants
 * service (in one outer transaction, each grant still validated and audited), and filler audit
 * rows through the real audit trail.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendActivities, type ActivityInput } from '../src/platform/audit/trail.js';
import { hostProviders } from '../src/providers/index.js';
import { Catalog } from '../src/modules/calls/catalog.js';
import { createGrant } from '../src/modules/grants/service.js';
import type { CreateGrantInput } from '../src/modules/grants/terms.js';
import { loadConfig, type Config } from '../src/platform/config.js';
import { immediate } from '../src/platform/db/open.js';
import { createDeps, sqliteDeps, type DepsOverrides, type SqliteDeps } from '../src/app/deps.js';
import { createLogger } from '../src/platform/log.js';
import { benchProvider } from './provider.js';

/** A temp data directory whose `policies/groups.json` lists `groups` (ceiling L2) and `main`. */
export function benchDataDir(groups: string[]): { dataDir: string; env: Record<string, string> } {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-bench-'));
  const policies = path.join(dataDir, 'policies');
  fs.mkdirSync(policies);
  const list = [{ name: 'main', ceiling: 'L3' }, ...groups.map((name) => ({ name, ceiling: 'L2' }))];
  fs.writeFileSync(path.join(policies, 'groups.json'), JSON.stringify({ groups: list }));
  return {
    dataDir,
    env: { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: policies, BROKER_SQLITE_SYNCHRONOUS: 'FULL', BROKER_HOST: '127.0.0.1', BROKER_PORT: '0' },
  };
}

/**
 * The bench catalog: the host's providers and `bench`. The host's providers get no credentials
 * (unavailable), except GitHub when `BENCH_GITHUB_API_URL` names the local recorded GitHub of (h)
 * (`bench/overhead.ts`), with the token its recordings expect.
 */
export function benchCatalog(): Catalog {
  const github = process.env['BENCH_GITHUB_API_URL'];
  const env = github ? { GITHUB_API_URL: github, GITHUB_TOKEN: process.env['BENCH_GITHUB_TOKEN'] } : {};
  return new Catalog([...hostProviders(env), benchProvider()]);
}

/** Deps over a bench data directory (SQLite), with the bench catalog and a silent logger. */
export async function benchDeps(env: Record<string, string>, overrides: DepsOverrides = {}): Promise<SqliteDeps> {
  const config: Config = loadConfig(env);
  return sqliteDeps(await createDeps(config, { catalog: benchCatalog(), logger: createLogger('silent'), ...overrides }));
}

/**
 * Creates grants through the grants service, all in one transaction (savepoint per grant): the
 * SQLite grant store does each grant's work synchronously when `createGrant` is called, so every
 * call is started inside the outer transaction and only their results are awaited after it.
 */
export async function createGrants(deps: SqliteDeps, grants: CreateGrantInput[]): Promise<void> {
  const created: Promise<unknown>[] = [];
  immediate(deps.db, () => {
    for (const g of grants) created.push(createGrant(deps, g, 'operator:bench'));
  });
  await Promise.all(created);
}

/** Appends `rows` filler audit rows through the audit trail, 10 000 per transaction. */
export function fillAudit(deps: SqliteDeps, rows: number): void {
  for (let done = 0; done < rows; ) {
    const n = Math.min(10_000, rows - done);
    const batch: ActivityInput[] = Array.from({ length: n }, (_, i) => ({
      actor: 'system',
      kind: 'bench.filler',
      subject: `bench:${done + i}`,
      detail: { i: done + i },
    }));
    immediate(deps.db, () => appendActivities(deps.db, batch, deps.clock.now()));
    done += n;
  }
}
