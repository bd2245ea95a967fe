/**
 * The PostgreSQL engine's connection: a `pg.Pool` with drizzle (`drizzle-orm/node-postgres`) over
 * the `pg-core` tables each store imports from its module's `schema.pg.ts` (the index
 * `src/schema.pg.ts` is drizzle-kit's), the committed migrations of `drizzle-pg/` applied at
 * start-up under an advisory lock (so replicas starting together apply them once), the `/ready`
 * write probe, and the fail-closed mapping of connection errors. Several broker processes
 * (replicas) may open the same database at once; nothing here assumes a single process.
 */
import pg from 'pg';
import { DrizzleQueryError, sql, type ExtractTablesWithRelations, type SQL } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle, type NodePgDatabase, type NodePgTransaction } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { ApiError } from '../http/problem.js';
import { packagePath } from '../paths.js';
import { describeDatabase } from './url.js';

/** The committed PostgreSQL migrations (`drizzle-pg/` at the package root, from source or `dist/`). */
export const PG_MIGRATIONS_DIR = packagePath('drizzle-pg');

/**
 * The class (first key) of every advisory lock the broker takes, in PostgreSQL's two-`int4` form:
 * 1313030738 = 0x4E434252, ASCII "NCBR". Another application's one-`bigint` locks never collide
 * with two-key ones.
 */
export const PG_LOCK_CLASS = 1313030738;

/**
 * The second keys of the broker's advisory locks (with {@link PG_LOCK_CLASS}).
 * - `migrations`: session lock held while one process applies migrations;
 * - `auditAppend`: transaction lock held from an audit append to its commit (`appendActivitiesPg`);
 * - `grantChanges`: transaction lock the `grants` / `grant_approvals` triggers take (the number is
 *   also written in the baseline migration), so `grant_changes.seq` order is commit order;
 * - `tokenRevocations`: transaction lock a token revocation takes before it reads the revocations
 *   already there, so two revocations of the same subject (no unique index covers it) on two
 *   replicas are decided one after the other, as on one broker.
 */
export const PG_LOCKS = { migrations: 1, auditAppend: 2, grantChanges: 3, tokenRevocations: 4 } as const;

/**
 * The classes (first key) of the broker's keyed advisory locks, whose second key is derived from a
 * value (`hashtext(value)`, an `int4`; see {@link keyedAdvisoryXactLock}). Each is a class of its
 * own, apart from {@link PG_LOCK_CLASS}, so a hash can never take one of {@link PG_LOCKS}.
 * - `callGroup` (0x4E434247, ASCII "NCBG"): one agent group's call claims, held by a claim from its
 *   count of the group's pending calls to its commit, so replicas together never exceed the
 *   group's backpressure limit.
 * - `grantRequestGroup` (0x4E434251, ASCII "NCBQ"): one agent group's new grant requests, held by
 *   a request's creation from its count of the group's pending requests to its commit, so
 *   replicas together never exceed the group's limit of pending requests.
 * Lock order: a transaction takes these (and its row locks) before the audit append's lock
 * (`PG_LOCKS.auditAppend`), which is always the last lock it takes.
 */
export const PG_KEYED_LOCKS = { callGroup: 1313030727, grantRequestGroup: 1313030737 } as const;

/** The drizzle handle over every capability's PostgreSQL tables. */
export type PgOrm = NodePgDatabase;

/** A drizzle transaction on {@link PgOrm} (what `orm.transaction(async (tx) => …)` passes). */
export type PgTx = NodePgTransaction<Record<string, never>, ExtractTablesWithRelations<Record<string, never>>>;

/** One open PostgreSQL database: the pool, drizzle over it, and a printable name. */
export interface PgDb {
  engine: 'postgres';
  pool: pg.Pool;
  orm: PgOrm;
  /** The URL without its password ({@link describeDatabase}), for logs and messages. */
  label: string;
  /** Always false: several replicas serve one PostgreSQL database at once (see `Db.singleServer`). */
  singleServer: false;
  /** Ends the pool (waits for checked-out clients to be released). */
  close(): Promise<void>;
}

/** Options for {@link openPgDb}. */
export interface OpenPgDbOptions {
  /** A `postgres://` or `postgresql://` URL; query options (`sslmode`, `sslrootcert`, `application_name`…) are the driver's. */
  url: string;
  /** Apply pending migrations under the migration lock (default true). */
  migrate?: boolean;
  /** Most connections the pool opens (default 10). */
  poolMax?: number;
  /** How long to wait for a connection, from the pool or the server, in ms, before failing (default 5000). */
  connectTimeoutMs?: number;
  /**
   * Called with errors of idle pooled connections (the server went away); such connections are
   * dropped, never thrown. Log only `err.message` and `err.code`: the pool attaches the client to
   * the error (`err.client`), whose connection parameters hold the password.
   */
  onIdleError?: (err: Error) => void;
}

/**
 * Opens a pool on the database at `opts.url` and, unless `migrate: false`, applies the committed
 * migrations of `drizzle-pg/` ({@link migratePg}). The pool connects lazily; an open with
 * migrations checks the connection at once.
 * @throws ApiError 503 `service_unavailable` when the server cannot be reached or refuses the
 *   login ({@link pgUnavailable}); the driver's error when a migration fails. The pool is ended
 *   before throwing.
 */
export async function openPgDb(opts: OpenPgDbOptions): Promise<PgDb> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    keepAlive: true,
    application_name: 'nanoclaw-broker',
  });
  // Without a listener, an idle connection's error (server restart, network cut) would crash the process.
  pool.on('error', (err) => opts.onIdleError?.(err));
  // The pool listens for errors of idle connections only. A checked-out one (a transaction's, held
  // from pool.connect()) that the server drops emits 'error' too, which with no listener would
  // crash the process: every connection gets one for good. The error still reaches the statement
  // waiting on it (the transaction then fails closed), and the pool discards the connection when
  // it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  let ended = false;
  const db: PgDb = {
    engine: 'postgres',
    pool,
    orm: drizzle(pool),
    label: describeDatabase({ engine: 'postgres', url: opts.url }),
    singleServer: false,
    close: async () => {
      if (ended) return;
      ended = true;
      await pool.end();
    },
  };
  if (opts.migrate ?? true) {
    try {
      await migratePg(db);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw isPgUnavailable(err) ? pgUnavailable(err, db.label) : err;
    }
  }
  return db;
}

/**
 * Applies the committed migrations of `drizzle-pg/` that this database lacks, on one connection
 * holding the session advisory lock `(PG_LOCK_CLASS, PG_LOCKS.migrations)`: replicas starting
 * together wait for each other, and the first applies the migrations (in one transaction, with
 * drizzle's migrator) while the others then find nothing to do. A process that dies holding the
 * lock loses its connection, which releases it.
 * @returns how many migrations this call applied (0 when the database was current).
 * @throws the driver's error (connection or migration); the transaction is then rolled back.
 */
export async function migratePg(db: PgDb): Promise<{ applied: number }> {
  const client = await db.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [PG_LOCK_CLASS, PG_LOCKS.migrations]);
    try {
      // A current database is left untouched (drizzle's migrator writes even then: CREATE SCHEMA
      // IF NOT EXISTS…), so a replica can start on a read-only one and report it as not ready.
      if ((await pendingOn(client)) === 0) return { applied: 0 };
      const before = await appliedMigrationCount(client);
      await migrate(drizzle(client), { migrationsFolder: PG_MIGRATIONS_DIR });
      return { applied: (await appliedMigrationCount(client)) - before };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [PG_LOCK_CLASS, PG_LOCKS.migrations]);
    }
  } catch (err) {
    // A connection in an unknown state (or still holding the lock) is closed, not pooled.
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}

/** How many committed migrations `client`'s database lacks (by each file's sha256), reading only. */
async function pendingOn(client: Pick<pg.ClientBase, 'query'>): Promise<number> {
  const wanted = readMigrationFiles({ migrationsFolder: PG_MIGRATIONS_DIR }).map((m) => m.hash);
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass('drizzle.__drizzle_migrations') AS t");
  if (exists.rows[0]?.t == null) return wanted.length;
  const rows = await client.query<{ hash: string }>('SELECT hash FROM drizzle.__drizzle_migrations');
  const applied = new Set(rows.rows.map((r) => r.hash));
  return wanted.filter((h) => !applied.has(h)).length;
}

/** Rows of drizzle's `drizzle.__drizzle_migrations`, 0 when the table does not exist yet. */
async function appliedMigrationCount(client: pg.ClientBase): Promise<number> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass('drizzle.__drizzle_migrations') AS t");
  if (exists.rows[0]?.t == null) return 0;
  const res = await client.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
  return Number(res.rows[0]?.n ?? 0);
}

/**
 * Counts committed migrations (files in `drizzle-pg/`) not applied to this database (0 means
 * current), comparing each file's sha256 with drizzle's `drizzle.__drizzle_migrations`.
 * @throws ApiError 503 `service_unavailable` when the database cannot be reached (a connection
 *   error is not reported as "pending").
 */
export async function pendingMigrationsPg(db: PgDb): Promise<number> {
  return failClosedPg(() => pendingOn(db.pool), db.label);
}

/** At most one real `/ready` probe commit per this many ms per database handle. */
export const PG_WRITE_PROBE_INTERVAL_MS = 1000;
/** How long a probe may take (connection and statements), in ms, before it counts as failed. */
export const PG_WRITE_PROBE_TIMEOUT_MS = 5000;

const lastProbe = new WeakMap<PgDb, { atMs: number; reason: Promise<string | null> }>();

/**
 * Probes whether the database can make a write durable: commits an upsert of the `broker_meta` row
 * `ready_probe` (value: the wall-clock time, RFC 3339) in a transaction with
 * `synchronous_commit = on`, so the commit returns only once the server flushed its WAL (and its
 * synchronous standbys, if configured, confirmed). An unreachable server, a read-only one (a hot
 * standby, `default_transaction_read_only`), a full disk, or a probe slower than
 * {@link PG_WRITE_PROBE_TIMEOUT_MS} fail it. At most one real commit per
 * {@link PG_WRITE_PROBE_INTERVAL_MS} per handle; callers in between share the last result.
 * @param nowMs monotonic time in ms (default `performance.now()`), for the rate limit only.
 * @returns null when the write committed, or why it did not (the driver's message).
 */
export function writeProbePg(db: PgDb, nowMs = performance.now()): Promise<string | null> {
  const last = lastProbe.get(db);
  if (last !== undefined && nowMs - last.atMs < PG_WRITE_PROBE_INTERVAL_MS) return last.reason;
  const reason = probeOnce(db);
  lastProbe.set(db, { atMs: nowMs, reason });
  return reason;
}

async function probeOnce(db: PgDb): Promise<string | null> {
  let client: pg.PoolClient;
  try {
    client = await db.pool.connect();
  } catch (err) {
    return errorText(err);
  }
  const q = (text: string, values: unknown[] = []) => client.query({ text, values, query_timeout: PG_WRITE_PROBE_TIMEOUT_MS } as pg.QueryConfig);
  let broken: Error | undefined;
  try {
    await q('BEGIN');
    await q('SET LOCAL synchronous_commit TO on');
    await q("INSERT INTO broker_meta (key, value) VALUES ('ready_probe', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [
      new Date().toISOString(),
    ]);
    await q('COMMIT');
    return null;
  } catch (err) {
    // The connection may be mid-transaction or mid-query: close it rather than pool it.
    broken = err instanceof Error ? err : new Error(String(err));
    return errorText(err);
  } finally {
    client.release(broken);
  }
}

/** SQLSTATE classes meaning "the database is not there for us now" rather than "this statement is wrong". */
const UNAVAILABLE_SQLSTATE_CLASSES = new Set(['08', '28', '3D', '53', '57', '58']);
/** Single SQLSTATEs with that meaning: 25006 read_only_sql_transaction (a standby or read-only database). */
const UNAVAILABLE_SQLSTATES = new Set(['25006']);
/** Messages of errors the `pg` driver and pool raise themselves when the connection fails. */
const DRIVER_UNAVAILABLE = /connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|after calling end on the pool|query read timeout|does not support ssl|ssl|certificate|ECONN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE/i;

/**
 * Whether `err` means the database is unreachable, refuses us, or cannot write (so the broker must
 * fail closed and retry later), as opposed to an error of the statement itself (a unique
 * violation, a check constraint), which the caller handles. True for: a server error whose
 * SQLSTATE class is 08 (connection), 28 (authorization), 3D (no such database), 53 (insufficient
 * resources: disk full, too many connections), 57 (operator intervention: shutdown, statement
 * timeout), 58 (system error), or 25006 (read-only transaction); a Node.js socket error
 * (`ECONNREFUSED`, `ETIMEDOUT`, …); a TLS error; the driver's own connection and timeout errors.
 * A drizzle `DrizzleQueryError` is judged by the driver's error it wraps ({@link driverError}).
 */
export function isPgUnavailable(err: unknown): boolean {
  err = driverError(err);
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    return UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_SQLSTATE_CLASSES.has(code.slice(0, 2));
  }
  if (!(err instanceof Error)) return false;
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys.syscall === 'string') return true;
  if (typeof sys.code === 'string' && /^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO)/.test(sys.code)) return true;
  if (err instanceof AggregateError) return err.errors.some(isPgUnavailable);
  return DRIVER_UNAVAILABLE.test(err.message);
}

/**
 * The fail-closed answer to a database that is not there: ApiError 503 `service_unavailable`
 * with `Retry-After: 1` and the driver's message as `cause` (it names no password: the driver's
 * messages never include the connection string).
 * @param label the database's printable name ({@link PgDb.label}), named in the detail.
 */
export function pgUnavailable(err: unknown, label = 'PostgreSQL'): ApiError {
  return new ApiError(
    'service_unavailable',
    `The database (${label}) is unavailable, so nothing was done; the broker retries by itself when it returns.`,
    { cause: errorText(err) },
    { 'Retry-After': '1' },
  );
}

/**
 * Runs `fn` (database work) and maps a connection-class failure ({@link isPgUnavailable}) to
 * {@link pgUnavailable}; an ApiError or any other error passes through unchanged, so a unique
 * violation still reaches the store that expects it.
 * @throws ApiError 503 `service_unavailable`, or whatever `fn` throws.
 */
export async function failClosedPg<T>(fn: () => Promise<T>, label?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ApiError) && isPgUnavailable(err)) throw pgUnavailable(err, label);
    throw err;
  }
}

/**
 * The statement that takes one of the broker's advisory locks for the rest of the current
 * transaction (`pg_advisory_xact_lock`), waiting for its holder to commit or roll back; run it
 * with `tx.execute(…)` inside `orm.transaction()`. A writer of `grants` / `grant_approvals` that
 * locks grant rows (`SELECT … FOR UPDATE`) before its first write takes `PG_LOCKS.grantChanges`
 * with this first, so it cannot deadlock with the change-log trigger's lock.
 */
export function advisoryXactLock(key: (typeof PG_LOCKS)[keyof typeof PG_LOCKS]): SQL {
  return sql`SELECT pg_advisory_xact_lock(${PG_LOCK_CLASS}, ${key})`;
}

/**
 * The statement that takes the keyed advisory lock `(cls, hashtext(key))` for the rest of the
 * current transaction, waiting for its holder; run it with `tx.execute(…)` inside
 * `orm.transaction()`. Two keys may share a hash: they then wait for each other, which is safe.
 * @param cls one of {@link PG_KEYED_LOCKS}.
 */
export function keyedAdvisoryXactLock(cls: (typeof PG_KEYED_LOCKS)[keyof typeof PG_KEYED_LOCKS], key: string): SQL {
  return sql`SELECT pg_advisory_xact_lock(${cls}, hashtext(${key}))`;
}

/**
 * The driver's error behind `err`: drizzle wraps what a query throws in a `DrizzleQueryError`
 * (message: the query text and its parameters) whose `cause` is the driver's error (a
 * `pg.DatabaseError` with its SQLSTATE `code` and `constraint`). Anything else is returned as is.
 */
export function driverError(err: unknown): unknown {
  let e = err;
  while (e instanceof DrizzleQueryError && e.cause !== undefined) e = e.cause;
  return e;
}

/** The SQLSTATE of a failed statement (`23505` unique_violation…), through drizzle's wrapper; undefined for other errors. */
export function pgErrorCode(err: unknown): string | undefined {
  const e = driverError(err);
  return e instanceof pg.DatabaseError ? e.code : undefined;
}

/**
 * What went wrong, in the driver's words, for logs and a problem's `cause`: never drizzle's
 * wrapper message, which carries the statement's parameters (row values).
 */
export function pgErrorText(err: unknown): string {
  err = driverError(err);
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(pgErrorText).join('; ');
  return err instanceof Error ? err.message || err.name : String(err);
}

const errorText = pgErrorText;
