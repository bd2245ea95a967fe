import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { packagePath } from '../paths.js';

/** The committed drizzle-kit migrations (`drizzle/` at the package root, from source or `dist/`). */
export const MIGRATIONS_DIR = packagePath('drizzle');

/**
 * The drizzle handle over the connection. It carries no schema: stores build their queries from
 * their module's tables (`db.orm.select().from(tasks)…`), so the platform imports no capability.
 */
export type Orm = BetterSQLite3Database;

/** One open SQLite database: the raw better-sqlite3 connection and drizzle over it. */
export interface Db {
  sqlite: Database.Database;
  orm: Orm;
  /** Absolute path of the database file. */
  path: string;
  /**
   * True when one database serves one broker process at a time (SQLite: the inflight set and the
   * backpressure counts are one process's memory), so a second `broker serve` must refuse to
   * start while an instance lease is live (`instances/lease.ts`). An engine built for replicas
   * sets it false.
   */
  singleServer: boolean;
}

/** Options for {@link openDb}. */
export interface OpenDbOptions {
  path: string;
  /** `PRAGMA synchronous`; FULL (the default) makes every commit durable before it returns. */
  synchronous?: 'FULL' | 'NORMAL' | 'EXTRA';
  /** `PRAGMA busy_timeout`, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Open without write access (for `/ready` tests and read-only tooling). */
  readonly?: boolean;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
}

/** Mode of the database file and its `-wal` and `-shm` files: read and write for the owner only. */
export const DB_FILE_MODE = 0o600;
/** Mode of a directory the broker creates for its data: the owner only. */
export const DATA_DIR_MODE = 0o700;

/**
 * Opens (creating if needed) the broker's SQLite file with WAL, `foreign_keys=ON`, a busy timeout
 * and the configured `synchronous`, then applies the committed migrations. When opening for
 * writing, a missing directory is created with mode 0700 and the file with mode 0600 before
 * SQLite opens it (SQLite gives the `-wal` and `-shm` files it creates later the database file's
 * mode); an existing file, `-wal` or `-shm` readable by others is narrowed to 0600.
 * @throws the better-sqlite3 error when the file cannot be opened or a migration fails.
 */
export function openDb(opts: OpenDbOptions): Db {
  if (!opts.readonly) {
    fs.mkdirSync(path.dirname(opts.path), { recursive: true, mode: DATA_DIR_MODE });
    fs.closeSync(fs.openSync(opts.path, 'a', DB_FILE_MODE));
  }
  const sqlite = new Database(opts.path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  sqlite.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
  if (!opts.readonly) {
    sqlite.pragma('journal_mode = WAL');
    for (const file of [opts.path, `${opts.path}-wal`, `${opts.path}-shm`]) restrictMode(file, DB_FILE_MODE);
  }
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
  const db: Db = { sqlite, orm: drizzle(sqlite), path: path.resolve(opts.path), singleServer: true };
  if (opts.migrate ?? !opts.readonly) migrate(db.orm, { migrationsFolder: MIGRATIONS_DIR });
  return db;
}

/**
 * Narrows `file` to `mode` when group or others have any access to it. A missing file is left
 * alone, and so is one this user may not chmod (EPERM: another user's file that the operator
 * shared on purpose).
 * @throws the fs error for anything else.
 */
export function restrictMode(file: string, mode: number): void {
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EPERM') throw err;
  }
}

/**
 * Counts committed migrations that are not applied to this database (0 means current).
 * Compares the sha256 of each file in `drizzle/` with drizzle's `__drizzle_migrations` table.
 */
export function pendingMigrations(db: Db): number {
  const wanted = readMigrationFiles({ migrationsFolder: MIGRATIONS_DIR }).map((m) => m.hash);
  let applied = new Set<string>();
  try {
    const rows = db.sqlite.prepare('SELECT hash FROM __drizzle_migrations').all() as { hash: string }[];
    applied = new Set(rows.map((r) => r.hash));
  } catch {
    return wanted.length;
  }
  return wanted.filter((h) => !applied.has(h)).length;
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction: committed when `fn` returns, rolled back when it
 * throws (the error is rethrown). Nested calls become savepoints. Every state change and its
 * audit row go through here, so both land or neither does.
 */
export function immediate<T>(db: Db, fn: () => T): T {
  if (db.sqlite.inTransaction) return db.sqlite.transaction(fn)();
  return db.sqlite.transaction(fn).immediate();
}

/** At most one real `/ready` probe commit per this many ms per connection (load balancers poll often). */
export const WRITE_PROBE_INTERVAL_MS = 1000;

/** Each connection's last probe: when (monotonic ms, `performance.now()`) and its result. */
const lastProbe = new WeakMap<Database.Database, { atMs: number; reason: string | null }>();

/**
 * Probes whether the database can make a write durable: commits an upsert of the `broker_meta` row
 * `ready_probe` (value: the wall-clock time, RFC 3339) with the connection's `synchronous`, so the
 * WAL append and its sync must succeed; a full disk, a read-only file or a lock held past the busy
 * timeout fail it. At most one real commit per {@link WRITE_PROBE_INTERVAL_MS} per connection; in
 * between, the last result is returned.
 * @param nowMs monotonic time in ms (default `performance.now()`), for the rate limit only.
 * @returns null when the write committed, or why it did not (the SQLite error's message).
 */
export function writeProbe(db: Db, nowMs = performance.now()): string | null {
  const last = lastProbe.get(db.sqlite);
  if (last !== undefined && nowMs - last.atMs < WRITE_PROBE_INTERVAL_MS) return last.reason;
  let reason: string | null = null;
  try {
    immediate(db, () =>
      db.sqlite
        .prepare("INSERT INTO broker_meta (key, value) VALUES ('ready_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .run(new Date().toISOString()),
    );
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  lastProbe.set(db.sqlite, { atMs: nowMs, reason });
  return reason;
}
