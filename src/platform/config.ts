import path from 'node:path';
import ms from 'ms';
import { z } from 'zod';
import { parseDatabaseUrl, type DatabaseTarget } from './db/url.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * The least call retention (`BROKER_CALL_RETENTION`, `broker calls purge --older-than`), in ms:
 * a call row is its idempotency key, and the README promises keys are kept at least 7 days.
 */
export const MIN_CALL_RETENTION_MS = 7 * 24 * 3600 * 1000;

/**
 * Parses a human duration with `ms` (`90s`, `15m`, `8h`, `30d`, `2w`); a bare number is seconds.
 * @returns milliseconds, or null when `text` is not a positive, finite duration.
 */
export function parseDurationMs(text: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  const millis = /^\d+$/.test(t) ? Number(t) * 1000 : ms(t as ms.StringValue);
  return typeof millis === 'number' && Number.isFinite(millis) && millis > 0 ? millis : null;
}

/** A duration variable: text parsed by {@link parseDurationMs}, at least `minMs`; the value is ms. */
const duration = (minMs: number, whyMin: string) =>
  z
    .string()
    .transform((text, ctx) => {
      const millis = parseDurationMs(text);
      if (millis === null) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration such as 30d, 720h or 2592000 (seconds)` });
        return z.NEVER;
      }
      return millis;
    })
    .pipe(z.number().min(minMs, whyMin));

/**
 * The `BROKER_*` environment, validated with zod. Units are in the names: `_S` seconds,
 * `_MS` milliseconds, `_BYTES` bytes; a name without a unit (`BROKER_CALL_RETENTION`) takes a
 * duration such as `30d` ({@link parseDurationMs}).
 */
const EnvSchema = z.object({
  BROKER_HOST: z.string().min(1).default('127.0.0.1'),
  BROKER_PORT: int(0, 65535).default(8787),
  BROKER_DATA_DIR: z.string().min(1).default('./data'),
  BROKER_DB_PATH: z.string().min(1).optional(),
  BROKER_DATABASE_URL: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      const target = parseDatabaseUrl(text);
      if ('error' in target) {
        ctx.addIssue({ code: 'custom', message: target.error });
        return z.NEVER;
      }
      return target;
    }),
  BROKER_POLICIES_DIR: z.string().min(1).default('./policies'),
  BROKER_CLOCK_SKEW_S: int(1, 3600).default(300),
  BROKER_BODY_LIMIT_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  BROKER_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BROKER_SQLITE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL', 'EXTRA']).default('FULL'),
  BROKER_SQLITE_BUSY_TIMEOUT_MS: int(0, 60_000).default(5000),
  BROKER_KEY_GRACE_S: int(0, 7 * 24 * 3600).default(600),
  BROKER_DISPATCH_INTERVAL_MS: int(100, 24 * 3600 * 1000).default(10_000),
  BROKER_MAX_PENDING_PER_GROUP: int(1, 10_000).default(5),
  BROKER_GROUP_CONCURRENCY: int(1, 100).default(2),
  BROKER_PROVIDER_TIMEOUT_MS: int(100, 600_000).default(20_000),
  BROKER_PENDING_GRANT_TTL_S: int(60, 30 * 24 * 3600).default(24 * 3600),
  BROKER_GRANT_REQUEST_TTL_S: int(60, 30 * 24 * 3600).default(24 * 3600),
  BROKER_SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(30_000),
  BROKER_LEASE_TTL_MS: int(1000, 600_000).default(15_000),
  BROKER_CALL_RETENTION: duration(
    MIN_CALL_RETENTION_MS,
    'at least 7d: call rows are the idempotency keys, which the broker guarantees to keep at least 7 days',
  ).default(30 * 24 * 3600 * 1000),
  BROKER_CHECKPOINT_EVERY_ROWS: int(1, 100_000_000).default(1000),
  BROKER_CHECKPOINT_INTERVAL_S: int(1, 7 * 24 * 3600).default(300),
  BROKER_CHECKPOINT_DIR: z.string().min(1).optional(),
  BROKER_IPC_DIR: z.string().optional(),
  BROKER_IPC_SWEEP_MS: int(50, 3600 * 1000).default(1000),
});

/** Validated broker configuration. Paths are absolute. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /**
   * SQLite file; `${dataDir}/broker.db` unless `BROKER_DB_PATH` or a `file:` `BROKER_DATABASE_URL`
   * is set. Only meaningful when `database.engine` is `sqlite`.
   */
  dbPath: string;
  /**
   * The database engine and where it is (`BROKER_DATABASE_URL`): unset or `file:<path>` is the
   * embedded SQLite file at {@link Config.dbPath}; `postgres://` / `postgresql://` is a PostgreSQL
   * server (the URL may hold a password: log it only through `describeDatabase`).
   */
  database: DatabaseTarget;
  policiesDir: string;
  /** Allowed distance between a signature's `created` and now, in seconds (RFC 9421 §3.2.1). */
  clockSkewS: number;
  /** Largest accepted request body, in bytes (413 above). */
  bodyLimitBytes: number;
  logLevel: z.infer<typeof EnvSchema>['BROKER_LOG_LEVEL'];
  sqliteSynchronous: 'FULL' | 'NORMAL' | 'EXTRA';
  sqliteBusyTimeoutMs: number;
  /** How long a rotated-out group key keeps verifying, in seconds. */
  keyGraceS: number;
  dispatchIntervalMs: number;
  /** Backpressure: calls queued or running per group before 429. */
  maxPendingPerGroup: number;
  /** Provider calls executed at once per group (p-queue concurrency). */
  groupConcurrency: number;
  providerTimeoutMs: number;
  /** How long an L3 grant may wait for its approvals, in seconds. */
  pendingGrantTtlS: number;
  /** How long an access request waits for an operator's decision before it expires, in seconds (`BROKER_GRANT_REQUEST_TTL_S`, default 24 h). */
  grantRequestTtlS: number;
  shutdownTimeoutMs: number;
  /**
   * How long a serving process's instance lease lasts without renewal, in ms
   * (`BROKER_LEASE_TTL_MS`, default 15 000); it renews every third of it. After a crash, the
   * process's running calls become `unknown_outcome`, and the database can be served again, once
   * this has passed.
   */
  leaseTtlMs: number;
  /**
   * How long a finished call row (its idempotency key) is kept, in ms (`BROKER_CALL_RETENTION`, a
   * duration such as `30d`; default 30 days, at least 7): older rows are purged hourly by `serve`.
   */
  callRetentionMs: number;
  /** `serve` signs an audit checkpoint once this many rows follow the last one (`BROKER_CHECKPOINT_EVERY_ROWS`). */
  checkpointEveryRows: number;
  /** ... or once this many seconds passed since it, when rows were added (`BROKER_CHECKPOINT_INTERVAL_S`). */
  checkpointIntervalS: number;
  /** Where signed checkpoints go (`BROKER_CHECKPOINT_DIR`, default `${dataDir}/checkpoints`), absolute. */
  checkpointDir: string;
  /**
   * The root of the agent groups' IPC directories (`BROKER_IPC_DIR`), absolute: group `g` uses
   * `<ipcDir>/<g>/` (mounted as `/workspace/ipc` in its container). Null (unset or empty): no file
   * transport.
   */
  ipcDir: string | null;
  /** How often `serve` sweeps every IPC `requests/` directory for files its watcher missed, in ms (`BROKER_IPC_SWEEP_MS`, default 1000). */
  ipcSweepMs: number;
}

/** Thrown by {@link loadConfig} when a variable is invalid; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the broker's `BROKER_*` variables.
 * @param env usually `process.env`.
 * @throws ConfigError naming every invalid variable and why.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.BROKER_DATA_DIR);
  const fileTarget = e.BROKER_DATABASE_URL?.engine === 'sqlite' ? e.BROKER_DATABASE_URL : undefined;
  const dbPath = fileTarget?.path ?? path.resolve(e.BROKER_DB_PATH ?? path.join(dataDir, 'broker.db'));
  if (fileTarget && e.BROKER_DB_PATH !== undefined && path.resolve(e.BROKER_DB_PATH) !== fileTarget.path) {
    throw new ConfigError(`invalid configuration: BROKER_DATABASE_URL: names ${fileTarget.path} but BROKER_DB_PATH names ${path.resolve(e.BROKER_DB_PATH)}; set one of them`);
  }
  return {
    host: e.BROKER_HOST,
    port: e.BROKER_PORT,
    dataDir,
    dbPath,
    database: e.BROKER_DATABASE_URL ?? { engine: 'sqlite', path: dbPath },
    policiesDir: path.resolve(e.BROKER_POLICIES_DIR),
    clockSkewS: e.BROKER_CLOCK_SKEW_S,
    bodyLimitBytes: e.BROKER_BODY_LIMIT_BYTES,
    logLevel: e.BROKER_LOG_LEVEL,
    sqliteSynchronous: e.BROKER_SQLITE_SYNCHRONOUS,
    sqliteBusyTimeoutMs: e.BROKER_SQLITE_BUSY_TIMEOUT_MS,
    keyGraceS: e.BROKER_KEY_GRACE_S,
    dispatchIntervalMs: e.BROKER_DISPATCH_INTERVAL_MS,
    maxPendingPerGroup: e.BROKER_MAX_PENDING_PER_GROUP,
    groupConcurrency: e.BROKER_GROUP_CONCURRENCY,
    providerTimeoutMs: e.BROKER_PROVIDER_TIMEOUT_MS,
    pendingGrantTtlS: e.BROKER_PENDING_GRANT_TTL_S,
    grantRequestTtlS: e.BROKER_GRANT_REQUEST_TTL_S,
    shutdownTimeoutMs: e.BROKER_SHUTDOWN_TIMEOUT_MS,
    leaseTtlMs: e.BROKER_LEASE_TTL_MS,
    callRetentionMs: e.BROKER_CALL_RETENTION,
    checkpointEveryRows: e.BROKER_CHECKPOINT_EVERY_ROWS,
    checkpointIntervalS: e.BROKER_CHECKPOINT_INTERVAL_S,
    checkpointDir: path.resolve(e.BROKER_CHECKPOINT_DIR ?? path.join(dataDir, 'checkpoints')),
    ipcDir: e.BROKER_IPC_DIR === undefined || e.BROKER_IPC_DIR.trim() === '' ? null : path.resolve(e.BROKER_IPC_DIR),
    ipcSweepMs: e.BROKER_IPC_SWEEP_MS,
  };
}
