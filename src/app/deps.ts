import { ulid } from 'ulid';
import { hostProviders } from '../providers/index.js';
import { Catalog } from '../modules/calls/catalog.js';
import { sqliteAuditStore, type AuditStore } from '../modules/audit/store.js';
import { pgAuditStore } from '../modules/audit/store.pg.js';
import { SqliteCallStore, type CallStore } from '../modules/calls/store.js';
import { PgCallStore } from '../modules/calls/store.pg.js';
import { pgGrantRequestStore } from '../modules/grant-requests/store.pg.js';
import { loadPerCallPolicy, type PerCallPolicy } from '../modules/calls/approval/policy.js';
import { sqliteCallHoldStore, type CallHoldStore } from '../modules/calls/approval/store.js';
import { pgCallHoldStore } from '../modules/calls/approval/store.pg.js';
import { sqliteSwitchStore, type SwitchStore } from '../modules/switches/store.js';
import { pgSwitchStore } from '../modules/switches/store.pg.js';
import { loadLimits, type LimitsPolicy } from '../modules/limits/policy.js';
import { sqliteLimitStore, type LimitStore } from '../modules/limits/store.js';
import { pgLimitStore } from '../modules/limits/store.pg.js';
import { pgGrantStore } from '../modules/grants/store.pg.js';
import { pgGroupKeyStore } from '../modules/identity/store.pg.js';
import { pgTaskStore } from '../modules/kernel/store.pg.js';
import { pgTokenStore } from '../modules/tokens/store.pg.js';
import { GrantIndex } from '../modules/grants/source.js';
import { sqliteGrantStore, type GrantStore } from '../modules/grants/store.js';
import { sqliteGrantRequestStore, type GrantRequestStore } from '../modules/grant-requests/store.js';
import { loadGroups, type Groups } from '../modules/identity/groups.js';
import { KeyStore, loadOrCreateMasterKey } from '../modules/identity/keys.js';
import { pinMasterKey } from '../modules/identity/pin.js';
import { sqliteGroupKeyStore, type GroupKeyStore } from '../modules/identity/store.js';
import type { Database } from '../platform/db/database.js';
import { openPgDb } from '../platform/db/pg.js';
import { sqliteOutboxStore, type OutboxStore } from '../platform/outbox/store.js';
import { pgOutboxStore } from '../platform/outbox/store.pg.js';
import { sqliteWebhookStore, type WebhookStore } from '../modules/webhooks/store.js';
import { pgWebhookStore } from '../modules/webhooks/store.pg.js';
import { pgGrantRows } from '../modules/grants/source.pg.js';
import { pgKeyRows } from '../modules/identity/keys.pg.js';
import { pgReadModel, syncReadModel, type ReadModel } from './read-model.js';
import { sqliteTaskStore, type TaskStore } from '../modules/kernel/store.js';
import { capabilitiesFor } from '../modules/calls/capabilities.js';
import { callsForTask } from '../modules/calls/views.js';
import { loadRunners } from '../modules/runner/policy.js';
import { Runner } from '../modules/runner/service.js';
import { sqliteRunStore, type RunStore } from '../modules/runner/store.js';
import { pgRunStore } from '../modules/runner/store.pg.js';
import { MAX_TOKEN_TTL_S, TokenService } from '../modules/tokens/service.js';
import { sqliteTokenStore, type TokenStore } from '../modules/tokens/store.js';
import type { Clock } from '../platform/clock.js';
import { systemClock } from '../platform/clock.js';
import { ConfigError, type Config } from '../platform/config.js';
import { openDb, type Db } from '../platform/db/open.js';
import { createMetrics, type Metrics } from '../platform/http/metrics.js';
import { createLogger, type Logger } from '../platform/log.js';
import { loadOrCreateSigningKey, type BrokerSigningKey } from '../platform/signing-key.js';

/**
 * Every module's store (see `platform/db/seam.ts`): the one place the application picks the
 * database engine of each. Modules declare the stores they need (`{ stores: { grants: GrantStore } }`)
 * and receive this object.
 */
export interface Stores {
  audit: AuditStore;
  /** The external calls (`ext_calls`): claims, outcomes, refusals, recovery, retention. */
  calls: CallStore;
  grants: GrantStore;
  grantRequests: GrantRequestStore;
  groupKeys: GroupKeyStore;
  tasks: TaskStore;
  tokens: TokenStore;
  runs: RunStore;
  /** The operators' kill switches (`kill_switches`), read on every call (synchronously on SQLite, before the decision on PostgreSQL). */
  switches: SwitchStore;
  /** The audit outbox: the audit trail read after each consumer's cursor (`outbox_cursors`). */
  outbox: OutboxStore;
  /** The rate limits' and quotas' counters (`limit_counters`, `limit_buckets`); the SQLite store is also taken from synchronously by the call path. */
  limits: LimitStore;
  /** Webhook deliveries (`webhook_deliveries`) and the `grant.expiring` audit rows. */
  webhooks: WebhookStore;
  /** Calls held for per-call approval (`call_holds`, `call_approvals`). */
  holds: CallHoldStore;
}

export type { Database } from '../platform/db/database.js';

/**
 * Every store over one database and clock, the engine's implementation of each: the SQLite stores
 * over `database.db`, or the PostgreSQL stores over `database.pg` (several replicas may serve that
 * database at once).
 * @param limits `maxPendingPerGroup`, the backpressure limit the PostgreSQL calls' claim enforces
 *   across replicas (the SQLite call path enforces it in process).
 */
export function createStores(database: Database, clock: Clock, limits: Pick<Config, 'maxPendingPerGroup'>): Stores {
  if (database.engine === 'postgres') {
    const { pg } = database;
    return {
      audit: pgAuditStore(pg),
      calls: new PgCallStore(pg, { maxPendingPerGroup: limits.maxPendingPerGroup }),
      grants: pgGrantStore(pg, clock),
      grantRequests: pgGrantRequestStore(pg, clock),
      groupKeys: pgGroupKeyStore(pg, clock),
      tasks: pgTaskStore(pg),
      tokens: pgTokenStore(pg, clock),
      runs: pgRunStore(pg),
      switches: pgSwitchStore(pg, clock),
      outbox: pgOutboxStore(pg, clock),
      limits: pgLimitStore(pg, clock),
      webhooks: pgWebhookStore(pg, clock),
      holds: pgCallHoldStore(pg, clock),
    };
  }
  const { db } = database;
  return {
    audit: sqliteAuditStore(db),
    calls: new SqliteCallStore(db),
    grants: sqliteGrantStore(db, clock),
    grantRequests: sqliteGrantRequestStore(db, clock),
    groupKeys: sqliteGroupKeyStore(db, clock),
    tasks: sqliteTaskStore(db),
    tokens: sqliteTokenStore(db, clock),
    runs: sqliteRunStore(db),
    switches: sqliteSwitchStore(db, clock),
    outbox: sqliteOutboxStore(db, clock),
    limits: sqliteLimitStore(db, clock),
    webhooks: sqliteWebhookStore(db, clock),
    holds: sqliteCallHoldStore(db, clock),
  };
}

/** Everything the app and the CLI run on. Built once per process by {@link createDeps}. */
export interface Deps {
  config: Config;
  /** The database this process serves from (`BROKER_DATABASE_URL`): the SQLite file or a PostgreSQL pool. */
  database: Database;
  /**
   * The SQLite database, when that is the engine (`database.db`); undefined on PostgreSQL. Only
   * SQLite-only tools read it (benches, tests that inspect the file); the app reads `database`.
   */
  db?: Db;
  clock: Clock;
  logger: Logger;
  keys: KeyStore;
  groups: Groups;
  metrics: Metrics;
  /** The registered provider actions. */
  catalog: Catalog;
  /** Grants served from memory, reloaded when any connection changes them (`GrantSource`). */
  grants: GrantIndex;
  /** Every module's store. */
  stores: Stores;
  /** The per-request refresh of `keys` and `grants` before the decision reads them (`app/read-model.ts`). */
  readModel: ReadModel;
  /**
   * Operator/auditor bearer tokens, signed with the broker's Ed25519 key (`<dataDir>/token.key`);
   * `tokens.revocations` and `tokens.keys` are the `token_revocations` and `token_keys` tables
   * every verification asks.
   */
  tokens: TokenService;
  /** The kernel's tasks, gate decisions and dispatches: `stores.tasks`, where the kernel's `KernelDeps` reads it. */
  tasks: TaskStore;
  /**
   * This process's broker instance id (a ULID made by {@link createDeps}). A serving process
   * (`runBroker`) holds a lease under it in `broker_instances` and stamps it on every call it
   * claims; CLI commands never take a lease.
   */
  instanceId: string;
  /** Which actions are held for per-call approval (`policies/approvals.json`). */
  perCall: PerCallPolicy;
  /** The Ed25519 key `serve` signs audit checkpoints with (`<dataDir>/checkpoint.key`, 0600; `src/platform/audit/checkpoints.ts`). */
  checkpointKey: BrokerSigningKey;
  /**
   * Starts agents for dispatches of the groups that have a runner in `policies/runners.json`
   * (validated here, at start-up); only a serving process starts its loop.
   */
  runner: Runner;
  /** `policies/limits.json` (validated at start-up), or its defaults when absent: rate limits, daily quotas, circuit breakers. */
  limits: LimitsPolicy;
  /** Paths created or used at start-up, for the start-up log line. */
  paths: { dataDir: string; dbPath: string; masterKey: string; tokenKey: string; policiesDir: string };
}

/** {@link Deps} of a process serving from SQLite: `db` is its open file. */
export type SqliteDeps = Deps & { db: Db };

/**
 * Narrows deps to SQLite's, for the tools that read the SQLite file directly (benches, tests).
 * @throws Error when the deps serve PostgreSQL.
 */
export function sqliteDeps(deps: Deps): SqliteDeps {
  if (deps.database.engine !== 'sqlite' || deps.db === undefined) throw new Error(`these deps serve ${deps.database.engine}, not the SQLite file this code reads directly`);
  return deps as SqliteDeps;
}

/** Optional replacements for tests (a manual clock, a captured logger, an open SQLite database). */
export type DepsOverrides = Partial<Pick<Deps, 'clock' | 'logger' | 'catalog'>> & { db?: Db };

/**
 * Opens the database (creating the data directory and applying migrations), loads or creates the
 * master key (mode 0600), the checkpoint-signing key and the token-signing key (registering its public key in `token_keys`
 * when missing, e.g. on the first start after an upgrade; a key replaced by hand retires every
 * earlier one at once, `TokenKeys.retireReplaced`, and a rotation that stopped after replacing the
 * file is finished, `TokenKeys.finishInterruptedRotation`), loads the groups policy and gives each
 * group a key.
 * On PostgreSQL (`BROKER_DATABASE_URL=postgres://…`) it opens a pool and applies the committed
 * migrations of `drizzle-pg/` under their advisory lock (replicas starting together apply them
 * once), and the read model is refreshed from the database before each request (`pgReadModel`),
 * once here so the keys and grants are in memory before anything reads them.
 * @throws ConfigError-like errors from policies, the master key file (or one the database was not pinned to, `pin.ts`) or SQLite; ApiError 503
 *   `service_unavailable` when PostgreSQL cannot be reached (the pool is closed); start-up stops.
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const master = loadOrCreateMasterKey(config.dataDir);
  const signingKey = loadOrCreateSigningKey(config.dataDir);
  const checkpointKey = loadOrCreateSigningKey(config.dataDir, 'checkpoint.key');
  const groups = loadGroups(config.policiesDir);
  const database = await openDatabase(config, overrides, logger);
  try {
    return await assemble(config, database, { clock, logger, master, signingKey, checkpointKey, groups, catalog: overrides.catalog });
  } catch (err) {
    await closeDatabase(database);
    throw err;
  }
}

/**
 * Opens the configured database: the SQLite file (or `overrides.db`), or a PostgreSQL pool with
 * its migrations applied. An idle pooled connection's error (the server went away) is logged with
 * its message and SQLSTATE only: the driver's error carries the connection's parameters.
 */
async function openDatabase(config: Config, overrides: DepsOverrides, logger: Logger): Promise<Database> {
  if (config.database.engine === 'postgres') {
    if (overrides.db) throw new ConfigError('an open SQLite database was given, but BROKER_DATABASE_URL names PostgreSQL');
    const pg = await openPgDb({
      url: config.database.url,
      onIdleError: (err) => logger.warn({ err: err.message, code: (err as { code?: string }).code }, 'an idle PostgreSQL connection failed; it is dropped and reopened on demand'),
    });
    return { engine: 'postgres', pg };
  }
  const db = overrides.db ?? openDb({ path: config.dbPath, synchronous: config.sqliteSynchronous, busyTimeoutMs: config.sqliteBusyTimeoutMs });
  return { engine: 'sqlite', db };
}

async function closeDatabase(database: Database): Promise<void> {
  if (database.engine === 'postgres') await database.pg.close();
  else if (database.db.sqlite.open) database.db.sqlite.close();
}

/** What {@link createDeps} loads before it opens the database. */
interface Loaded {
  clock: Clock;
  logger: Logger;
  master: ReturnType<typeof loadOrCreateMasterKey>;
  signingKey: BrokerSigningKey;
  checkpointKey: BrokerSigningKey;
  groups: Groups;
  catalog: Catalog | undefined;
}

async function assemble(config: Config, database: Database, loaded: Loaded): Promise<Deps> {
  const { clock, logger, master, signingKey, checkpointKey, groups } = loaded;
  await pinMasterKey(database, master.key, master.path);
  const stores = createStores(database, clock, config);
  const keys =
    database.engine === 'postgres'
      ? new KeyStore(pgKeyRows(database.pg), master.key, clock, config.keyGraceS * 1000, stores.groupKeys)
      : new KeyStore(database.db, master.key, clock, config.keyGraceS * 1000, stores.groupKeys);
  const grants = new GrantIndex(database.engine === 'postgres' ? pgGrantRows(database.pg) : database.db, clock);
  const readModel = database.engine === 'postgres' ? pgReadModel(database.pg, keys, grants) : syncReadModel;
  await keys.ensureGroups(groups.keys());
  await readModel.refresh();
  const tokens = new TokenService(signingKey, clock, stores.tokens);
  const tokenKeys = tokens.keys;
  const registered = await tokenKeys.register(signingKey);
  if (registered === 'retired') {
    logger.warn({ kid: signingKey.kid, token_key: signingKey.path }, 'token.key holds a retired signing key: tokens it signs stop verifying after its grace; run `broker token rotate-key`');
  } else if (registered === 'current') {
    const finished = await tokenKeys.finishInterruptedRotation(signingKey, MAX_TOKEN_TTL_S * 1000);
    if (finished) logger.warn({ kid: signingKey.kid, retired: finished.retired, verify_until: new Date(finished.verifyUntil).toISOString() }, 'finished an interrupted `broker token rotate-key`: the keys before token.key are retired with the grace it asked');
  } else {
    const replaced = await tokenKeys.retireReplaced(signingKey);
    if (replaced.length > 0) logger.warn({ kid: signingKey.kid, retired: replaced }, 'token.key was replaced by hand: tokens signed by the keys before it are refused from now on');
  }
  const runnersPolicy = loadRunners(config.policiesDir);
  const limits = loadLimits(config.policiesDir);
  const metrics = createMetrics();
  const catalog = loaded.catalog ?? new Catalog(hostProviders());
  const runner = new Runner({
    runs: stores.runs,
    tasks: stores.tasks,
    clock,
    logger,
    keys,
    policy: runnersPolicy,
    config: { dataDir: config.dataDir, ipcDir: config.ipcDir },
    sources: { calls: (taskId) => callsForTask(stores.calls, taskId), capabilities: (group) => capabilitiesFor({ catalog, grants, clock, groups }, group) },
    registry: metrics.registry,
  });
  return {
    config,
    database,
    ...(database.engine === 'sqlite' ? { db: database.db } : {}),
    clock,
    logger,
    keys,
    groups,
    metrics,
    runner,
    limits,
    instanceId: ulid(),
    perCall: loadPerCallPolicy(config.policiesDir),
    catalog,
    grants,
    stores,
    readModel,
    tokens,
    tasks: stores.tasks,
    checkpointKey,
    paths: { dataDir: config.dataDir, dbPath: database.engine === 'sqlite' ? database.db.path : database.pg.label, masterKey: master.path, tokenKey: signingKey.path, policiesDir: config.policiesDir },
  };
}

/** Closes what {@link createDeps} opened (the SQLite file or the PostgreSQL pool). Idempotent. */
export async function closeDeps(deps: Deps): Promise<void> {
  await Promise.all(deps.catalog.providers.map((p) => p.close?.()));
  await closeDatabase(deps.database);
}
