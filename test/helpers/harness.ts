/**
 * Test harness: a real broker on a real SQLite file in a fresh temp directory, served on an
 * ephemeral port, with a manual clock and signing clients for each group.
 *
 * The same broker runs on PostgreSQL when `BROKER_TEST_ENGINE=postgres` (what the PostgreSQL test
 * project, `vitest.postgres.config.ts`, sets for the HTTP suites it runs) or `engine: 'postgres'`:
 * each broker then gets a fresh database on the run's test server (`freshDatabase()`), and a
 * restart on the same `dataDir` reopens the same database. A test that reads the SQLite file
 * itself (`deps.db`, undefined there) fails at its first use: it cannot run on PostgreSQL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { hostProviders } from '../../src/providers/index.js';
import { createApp } from '../../src/app/app.js';
import { Catalog } from '../../src/modules/calls/catalog.js';
import type { Provider } from '../../src/providers/contract.js';
import { BrokerClient } from '../../src/client/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { loadConfig } from '../../src/platform/config.js';
import { openDb } from '../../src/platform/db/open.js';
import { closeDeps, createDeps, sqliteDeps, type Deps, type SqliteDeps } from '../../src/app/deps.js';
import { freshDatabase } from './postgres.js';
import type { ChainVerdict, StoredActivity } from '../../src/platform/audit/chain.js';
import { verifyChainOf } from '../../src/platform/audit/source.js';
import type { Database } from '../../src/platform/db/database.js';
import { createLogger } from '../../src/platform/log.js';
import { startServer, type RunningServer } from '../../src/app/server.js';

/** The repository root. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

const madeDirs = new Set<string>();

/**
 * Makes a fresh temp directory. Every one is removed after its test file by
 * {@link removeTempDirs} (`test/setup.ts`), so none outlive the run.
 */
export function tempDir(prefix = 'broker-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.add(dir);
  return dir;
}

/** Removes every directory {@link tempDir} made in this test file's process (after its tests). */
export function removeTempDirs(): void {
  for (const dir of madeDirs) fs.rmSync(dir, { recursive: true, force: true });
  madeDirs.clear();
}

/** Options for {@link startBroker}. */
export interface BrokerOptions {
  /** Extra `BROKER_*` variables. */
  env?: Record<string, string>;
  /** Start time of the manual clock (Unix ms); default now. */
  startMs?: number;
  /** Serve on a real port (default true); false gives an in-process `app.request` client. */
  listen?: boolean;
  /** Reuse a data directory (to restart on the same database). */
  dataDir?: string;
  /**
   * Open the (existing) database read-only, as if the disk refused writes: the SQLite file opened
   * read-only, or on PostgreSQL sessions with `default_transaction_read_only` (a hot standby).
   */
  readonlyDb?: boolean;
  /** Providers registered beside the host's, e.g. test-only actions. */
  providers?: Provider[];
  /** The database engine; default `BROKER_TEST_ENGINE` (`sqlite` when unset). */
  engine?: TestEngine;
}

/** The engines the harness runs a broker on. */
export type TestEngine = 'sqlite' | 'postgres';

/** The engine the HTTP suites run on in this process: `BROKER_TEST_ENGINE` (`sqlite` or `postgres`), default `sqlite`. */
export function testEngine(): TestEngine {
  const e = process.env['BROKER_TEST_ENGINE'];
  if (e === undefined || e === '' || e === 'sqlite') return 'sqlite';
  if (e === 'postgres') return 'postgres';
  throw new Error(`BROKER_TEST_ENGINE must be sqlite or postgres, not ${e}`);
}

/** The file in a test data directory remembering its PostgreSQL database, so a restart on the same directory reopens it. */
const PG_URL_FILE = 'test-database-url';

/** `BROKER_DATABASE_URL` for a PostgreSQL broker on `dataDir`: the database it used before, or a fresh one. */
async function postgresUrlFor(dataDir: string, readonly = false): Promise<string> {
  const file = path.join(dataDir, PG_URL_FILE);
  let url: string;
  if (fs.existsSync(file)) {
    url = fs.readFileSync(file, 'utf8');
  } else {
    url = await freshDatabase('broker');
    fs.writeFileSync(file, url, { mode: 0o600 });
  }
  if (!readonly) return url;
  const ro = new URL(url);
  ro.searchParams.set('options', '-c default_transaction_read_only=on');
  return ro.toString();
}

/**
 * Deps of a broker, typed as the SQLite ones the suites use. On PostgreSQL `db` stays undefined
 * (the app reads `database`), so a test that reads the SQLite file directly fails there at its
 * first `deps.db` use: it cannot run on PostgreSQL.
 */
function asTestDeps(deps: Deps): SqliteDeps {
  return deps.database.engine === 'sqlite' ? sqliteDeps(deps) : (deps as SqliteDeps);
}

/** A running broker for one test file. */
export interface TestBroker {
  deps: SqliteDeps;
  clock: ManualClock;
  dataDir: string;
  /** `http://127.0.0.1:<port>`, or `http://broker.test` in-process. */
  url: string;
  server: RunningServer | null;
  /** Every log line the broker wrote, as text. */
  logs: string[];
  /** Where its database is, for a CLI child process on the same database: `BROKER_DATABASE_URL` on PostgreSQL, else nothing. */
  databaseEnv: Record<string, string>;
  /** A signing client for `group`, using its current key and the manual clock. */
  client(group: string): BrokerClient;
  /** The stored audit rows (of `subject` when given), oldest first, read from whichever engine serves. */
  auditRows(subject?: string): Promise<StoredActivity[]>;
  /** Recomputes the whole audit chain from seq 1 (`verifyChainOf`), on whichever engine serves. */
  verifyChain(): Promise<ChainVerdict>;
  /**
   * Runs one SQL query written for both engines (`?` placeholders, standard SQL; counts as
   * `CAST(COUNT(*) AS INTEGER)`) on whichever engine serves, and returns its rows.
   */
  rows<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
  /** Stops the server (if any), closes the database, and removes the data directory it made. */
  stop(): Promise<void>;
}

const AUDIT_COLUMNS = 'seq, ts, actor, kind, subject, detail, prev_hash AS "prevHash", hash';

/** The stored audit rows (of `subject` when given), oldest first. */
async function auditRowsOf(database: Database, subject?: string): Promise<StoredActivity[]> {
  const where = subject === undefined ? '' : ' WHERE subject = ';
  if (database.engine === 'sqlite') {
    const stmt = database.db.sqlite.prepare(`SELECT ${AUDIT_COLUMNS} FROM gov_activities${where}${subject === undefined ? '' : '?'} ORDER BY seq`);
    return (subject === undefined ? stmt.all() : stmt.all(subject)) as StoredActivity[];
  }
  const res = await database.pg.pool.query<StoredActivity & { seq: string }>(
    `SELECT ${AUDIT_COLUMNS} FROM gov_activities${where}${subject === undefined ? '' : '$1'} ORDER BY seq`,
    subject === undefined ? [] : [subject],
  );
  return res.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** One query with `?` placeholders on either engine (PostgreSQL's are numbered `$1`, `$2`…). */
async function rowsOf<T>(database: Database, sql: string, params: unknown[]): Promise<T[]> {
  if (database.engine === 'sqlite') return database.db.sqlite.prepare(sql).all(...params) as T[];
  let n = 0;
  const res = await database.pg.pool.query(sql.replace(/\?/g, () => `$${++n}`), params);
  return res.rows as T[];
}

/**
 * A temp copy of the repository's policies directory with `files` (name → JSON value) written
 * over it, e.g. `{'approvals.json': {per_call: {}}}` for a broker that holds no call for approval.
 * @returns its path (removed with the OS temp directory).
 */
export function policiesWith(files: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-policies-'));
  fs.cpSync(path.join(REPO_ROOT, 'policies'), dir, { recursive: true });
  for (const [name, value] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), JSON.stringify(value));
  return dir;
}

/** Starts a broker on a temp data directory with the repository's policies. */
export async function startBroker(opts: BrokerOptions = {}): Promise<TestBroker> {
  const dataDir = opts.dataDir ?? tempDir();
  const engine = opts.engine ?? testEngine();
  const config = loadConfig({
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    BROKER_LOG_LEVEL: 'info',
    BROKER_PORT: '0',
    ...(engine === 'postgres' && opts.env?.['BROKER_DATABASE_URL'] === undefined ? { BROKER_DATABASE_URL: await postgresUrlFor(dataDir, opts.readonlyDb) } : {}),
    ...opts.env,
  });
  const databaseEnv: Record<string, string> = config.database.engine === 'postgres' ? { BROKER_DATABASE_URL: config.database.url } : {};
  const clock = new ManualClock(opts.startMs ?? Date.now());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const db = opts.readonlyDb && engine === 'sqlite' ? openDb({ path: config.dbPath, readonly: true }) : undefined;
  const catalog = opts.providers ? new Catalog([...hostProviders(), ...opts.providers]) : undefined;
  const deps = asTestDeps(await createDeps(config, { clock, logger: createLogger(config.logLevel, sink), ...(db ? { db } : {}), ...(catalog ? { catalog } : {}) }));
  const listen = opts.listen ?? true;
  const server = listen ? await startServer(deps, '127.0.0.1', 0) : null;
  const app = listen ? null : createApp(deps);
  const url = server?.url ?? 'http://broker.test';
  return {
    deps,
    clock,
    dataDir,
    url,
    server,
    logs,
    databaseEnv,
    client(group: string) {
      const key = deps.keys.current(group);
      return new BrokerClient({
        baseUrl: url,
        credential: { keyid: key.keyid, secret: key.secret },
        now: () => clock.now(),
        ...(app ? { fetch: async (u: string, init: RequestInit) => app.request(u, init) } : {}),
      });
    },
    auditRows: (subject) => auditRowsOf(deps.database, subject),
    verifyChain: () => verifyChainOf(deps.database),
    rows: <T,>(sql: string, ...params: unknown[]) => rowsOf<T>(deps.database, sql, params),
    async stop() {
      await server?.stop(1000);
      await closeDeps(deps);
      if (opts.dataDir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
