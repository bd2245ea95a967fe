/**
 * Test harness: a real broker on a real SQLite file in a fresh temp directory, served on an
 * ephemeral port, with a manual clock and signing clients for each group.
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
import { closeDeps, createDeps, type Deps } from '../../src/app/deps.js';
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
  /** Open the (existing) database read-only, as if the disk refused writes. */
  readonlyDb?: boolean;
  /** Providers registered beside the host's, e.g. test-only actions (issue 4's call tests). */
  providers?: Provider[];
}

/** A running broker for one test file. */
export interface TestBroker {
  deps: Deps;
  clock: ManualClock;
  dataDir: string;
  /** `http://127.0.0.1:<port>`, or `http://broker.test` in-process. */
  url: string;
  server: RunningServer | null;
  /** Every log line the broker wrote, as text. */
  logs: string[];
  /** A signing client for `group`, using its current key and the manual clock. */
  client(group: string): BrokerClient;
  /** Stops the server (if any), closes the database, and removes the data directory it made. */
  stop(): Promise<void>;
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
  const config = loadConfig({
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    BROKER_LOG_LEVEL: 'info',
    BROKER_PORT: '0',
    ...opts.env,
  });
  const clock = new ManualClock(opts.startMs ?? Date.now());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const db = opts.readonlyDb ? openDb({ path: config.dbPath, readonly: true }) : undefined;
  const catalog = opts.providers ? new Catalog([...hostProviders(), ...opts.providers]) : undefined;
  const deps = await createDeps(config, { clock, logger: createLogger(config.logLevel, sink), ...(db ? { db } : {}), ...(catalog ? { catalog } : {}) });
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
    client(group: string) {
      const key = deps.keys.current(group);
      return new BrokerClient({
        baseUrl: url,
        credential: { keyid: key.keyid, secret: key.secret },
        now: () => clock.now(),
        ...(app ? { fetch: async (u: string, init: RequestInit) => app.request(u, init) } : {}),
      });
    },
    async stop() {
      await server?.stop(1000);
      await closeDeps(deps);
      if (opts.dataDir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
