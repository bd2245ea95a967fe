import { ulid } from 'ulid';
import { hostProviders } from '../providers/index.js';
import { Catalog } from '../modules/calls/catalog.js';
import { sqliteAuditStore, type AuditStore } from '../modules/audit/store.js';
import { pgAuditStore } from '../modules/audit/store.pg.js';
import { SqliteCallStore, type CallStore } from '../modules/calls/store.js';
import { PgCallStore } from '../modules/calls/store.pg.js';
import { loadPerCallPolicy, type PerCallPolicy } from '../modules/calls/approval/policy.js';
import { sqliteCallHoldStore, type CallHoldStore } from '../modules/calls/approval/store.js';
import { pgCallHoldStore } from '../modules/calls/approval/store.pg.js';
import { unservedGrantRequestStore } from '../modules/grant-requests/store.unserved.js';
import { sqliteSwitchStore, type SwitchStore } from '../modules/switches/store.js';
import { unservedSwitchStore } from '../modules/switches/store.unserved.js';
import { pgGrantStore } from '../modules/grants/store.pg.js';
import { pgGroupKeyStore } from '../modules/identity/store.pg.js';
import { pgTaskStore } from '../modules/kernel/store.pg.js';
import { pgTokenStore } from '../modules/tokens/store.pg.js';
import { GrantIndex } from '../modules/grants/source.js';
import { sqliteGrantStore, type GrantStore } from '../modules/grants/store.js';
import { sqliteGrantRequestStore, type GrantRequestStore } from '../modules/grant-requests/store.js';
import { loadGroups, type Groups } from '../modules/identity/groups.js';
import { KeyStore, loadOrCreateMasterKey } from '../modules/identity/keys.js';
import { sqliteGroupKeyStore, type GroupKeyStore } from '../modules/identity/store.js';
import type { PgDb } from '../platform/db/pg.js';
import { syncReadModel, type ReadModel } from './read-model.js';
import { sqliteTaskStore, type TaskStore } from '../modules/kernel/store.js';
import { capabilitiesFor } from '../modules/calls/capabilities.js';
import { callsForTask } from '../modules/calls/views.js';
import { loadRunners } from '../modules/runner/policy.js';
import { Runner } from '../modules/runner/service.js';
import { sqliteRunStore, type RunStore } from '../modules/runner/store.js';
import { unservedRunStore } from '../modules/runner/store.unserved.js';
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
  /** The operators' kill switches (`kill_switches`); the SQLite store is also read synchronously by the call path. */
  switches: SwitchStore;
  /** Calls held for per-call approval (`call_holds`, `call_approvals`). */
  holds: CallHoldStore;
}

/** The open database a process serves from: the embedded SQLite file or a PostgreSQL pool. */
export type Database = { engine: 'sqlite'; db: Db } | { engine: 'postgres'; pg: PgDb };

/**
 * Every store over one database and clock, the engine's implementation of each: the SQLite stores
 * over `database.db`, or the PostgreSQL stores over `database.pg` (several replicas may serve that
 * database at once). Grant requests, agent runs and kill switches have no PostgreSQL store yet: on PostgreSQL
 * their stores refuse every operation with 503 `service_unavailable` (nothing is read or written).
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
      grantRequests: unservedGrantRequestStore('PostgreSQL'),
      groupKeys: pgGroupKeyStore(pg, clock),
      tasks: pgTaskStore(pg),
      tokens: pgTokenStore(pg, clock),
      runs: unservedRunStore('PostgreSQL'),
      switches: unservedSwitchStore('PostgreSQL'),
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
    holds: sqliteCallHoldStore(db, clock),
  };
}

/** Everything the app and the CLI run on. Built once per process by {@link createDeps}. */
export interface Deps {
  config: Config;
  db: Db;
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
  /** Paths created or used at start-up, for the start-up log line. */
  paths: { dataDir: string; dbPath: string; masterKey: string; tokenKey: string; policiesDir: string };
}

/** Optional replacements for tests (a manual clock, a captured logger, an open database). */
export type DepsOverrides = Partial<Pick<Deps, 'clock' | 'logger' | 'db' | 'catalog'>>;

/**
 * Opens the database (creating the data directory and applying migrations), loads or creates the
 * master key (mode 0600), the checkpoint-signing key and the token-signing key (registering its public key in `token_keys`
 * when missing, e.g. on the first start after an upgrade; a key replaced by hand retires every
 * earlier one at once, `TokenKeys.retireReplaced`, and a rotation that stopped after replacing the
 * file is finished, `TokenKeys.finishInterruptedRotation`), loads the groups policy and gives each
 * group a key.
 * @throws ConfigError for a PostgreSQL `BROKER_DATABASE_URL` (not served yet); ConfigError-like errors from policies, the master key file or SQLite; start-up stops.
 */
export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  // Fail closed: the PostgreSQL engine's schema and migrations exist, but the stores do not serve
  // it yet, so a postgres:// URL must never fall back to the embedded SQLite file.
  if (config.database.engine === 'postgres') {
    throw new ConfigError('BROKER_DATABASE_URL: this build does not serve PostgreSQL yet (its schema and migrations are in drizzle-pg/; the stores come next). Unset it to use the embedded SQLite database.');
  }
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const master = loadOrCreateMasterKey(config.dataDir);
  const signingKey = loadOrCreateSigningKey(config.dataDir);
  const checkpointKey = loadOrCreateSigningKey(config.dataDir, 'checkpoint.key');
  const db =
    overrides.db ??
    openDb({ path: config.dbPath, synchronous: config.sqliteSynchronous, busyTimeoutMs: config.sqliteBusyTimeoutMs });
  const groups = loadGroups(config.policiesDir);
  const stores = createStores({ engine: 'sqlite', db }, clock, config);
  const keys = new KeyStore(db, master.key, clock, config.keyGraceS * 1000, stores.groupKeys);
  await keys.ensureGroups(groups.keys());
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
  const metrics = createMetrics();
  const catalog = overrides.catalog ?? new Catalog(hostProviders());
  const grants = new GrantIndex(db, clock);
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
    db,
    clock,
    logger,
    keys,
    groups,
    metrics,
    runner,
    instanceId: ulid(),
    perCall: loadPerCallPolicy(config.policiesDir),
    catalog,
    grants,
    stores,
    readModel: syncReadModel,
    tokens,
    tasks: stores.tasks,
    checkpointKey,
    paths: { dataDir: config.dataDir, dbPath: db.path, masterKey: master.path, tokenKey: signingKey.path, policiesDir: config.policiesDir },
  };
}

/** Closes what {@link createDeps} opened. Idempotent. */
export async function closeDeps(deps: Deps): Promise<void> {
  await Promise.all(deps.catalog.providers.map((p) => p.close?.()));
  if (deps.db.sqlite.open) deps.db.sqlite.close();
}
