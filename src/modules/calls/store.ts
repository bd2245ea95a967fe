/**
 * The calls' store seam: {@link CallStore}, everything the call path, its routes, the CLI, crash
 * recovery and retention read and write in `ext_calls` (see `schema.ts`), and
 * {@link SqliteCallStore}, its SQLite implementation, the only place this module writes SQL.
 *
 * Every method returns a promise; every write is one transaction that applies the change and
 * appends its audit row, or changes nothing and rejects. The one synchronous read is
 * {@link CallKeyReader.findNow}, for the decision path, which must not await between its
 * idempotency check and the claim.
 */
import type { Statement } from 'better-sqlite3';
import { and, asc, desc, eq, gt, lt, lte, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import { appendActivity, type ActivityInput } from '../../platform/audit/trail.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { brokerInstances } from '../../platform/lease/schema.js';
import { GroupCommit, type CommitStats } from './commit.js';
import { extCalls } from './schema.js';

/**
 * Where a call is: `running` until its outcome is stored; `unknown_outcome` after a crash;
 * `awaiting_approval` while held for per-call approval, `expired` when its hold ended unexecuted.
 */
export type CallStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'unknown_outcome' | 'awaiting_approval' | 'expired';

/** Every call status, for validating `--status` and `?status=`. */
export const CALL_STATUSES = ['running', 'succeeded', 'failed', 'timed_out', 'unknown_outcome', 'awaiting_approval', 'expired'] as const satisfies readonly CallStatus[];

/** Statuses a purge may delete: every one but `running` and `awaiting_approval` (a call not finished). */
export const PURGEABLE_STATUSES: readonly CallStatus[] = CALL_STATUSES.filter((s) => s !== 'running' && s !== 'awaiting_approval');

/** One `ext_calls` row. Times are Unix ms; `response` and `receipt` are JSON text. */
export interface CallRow {
  group: string;
  requestId: string;
  fingerprint: string;
  action: string;
  level: number;
  resource: string;
  summary: string;
  taskId: string | null;
  grantId: string;
  status: CallStatus;
  httpStatus: number | null;
  response: string | null;
  receipt: string;
  attempts: number;
  createdAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  /** The broker instance (`broker_instances.id`) that claimed the call; null on rows from before leases. */
  instanceId: string | null;
}

/** What a claim inserts (status `running`), `instanceId` being the claiming process's. */
export type NewCall = Pick<CallRow, 'group' | 'requestId' | 'fingerprint' | 'action' | 'level' | 'resource' | 'summary' | 'taskId' | 'grantId' | 'receipt' | 'createdAt' | 'instanceId'>;

/** What ending a call stores. */
export type CallEnd = Pick<CallRow, 'status' | 'httpStatus' | 'response' | 'attempts' | 'finishedAt' | 'durationMs'>;

/**
 * Filters for {@link CallStore.list}; all optional. `before` keeps calls created before it
 * (exclusive); `after` keeps the calls that follow that call in the list's order (keyset paging).
 */
export interface CallFilter {
  group?: string;
  status?: CallStatus;
  taskId?: string;
  before?: number;
  after?: { createdAt: number; requestId: string; group: string };
  limit?: number;
}

/** An audit row to append in the write's transaction, at `nowMs` (Unix ms). */
export interface AuditWrite {
  input: ActivityInput;
  nowMs: number;
}

/** An instance whose lease expired, as crash recovery found it (and deleted it). */
export interface ExpiredInstance {
  id: string;
  pid: number;
  host: string;
}

/** How crash recovery ends one interrupted call: the outcome to store and its audit row. */
export type InterruptedPlan = (row: CallRow, nowMs: number) => { end: CallEnd; audit: AuditWrite };

/** The rejection of a claim whose key (group, request id) is taken: another connection claimed it. */
export class DuplicateClaim extends Error {
  override name = 'DuplicateClaim';
}

/**
 * The rejection of a claim that would give its group more than `limit` pending (`running`) calls
 * in total across every process serving the database: the PostgreSQL store counts them under a
 * per-group lock, so replicas together never exceed the limit (`maxPendingPerGroup`). The SQLite
 * store never raises it: one process serves a SQLite database, and the call path's in-memory count
 * (`GroupLanes`) is exact there. Answer it as step 4 does: 429 `backpressure` with `Retry-After`.
 */
export class GroupBackpressure extends Error {
  override name = 'GroupBackpressure';
  constructor(
    /** The group whose claim was refused. */
    readonly group: string,
    /** Its pending calls when the claim was refused (at least `limit`). */
    readonly pending: number,
    /** The most pending calls a group may have. */
    readonly limit: number,
  ) {
    super(`group ${group} already has ${pending} pending calls (limit ${limit})`);
  }
}

/** The decision path's one synchronous read (see the module note). */
export interface CallKeyReader {
  /** The call with this key, or undefined; read now, without awaiting. */
  findNow(group: string, requestId: string): CallRow | undefined;
}

/** The calls' storage; see the module note. */
export interface CallStore {
  /** The call with this key, or undefined. */
  find(group: string, requestId: string): Promise<CallRow | undefined>;
  /**
   * Calls matching `filter`, newest first (`created_at DESC, request_id, "group"`), at most `limit`
   * (default 100, max 1001: a page of 1000 and the row that says more follow).
   */
  list(filter?: CallFilter): Promise<CallRow[]>;
  /**
   * The claim: inserts the `running` call with its `call.claimed` audit row; resolves once durable.
   * @throws (rejects) DuplicateClaim when the key is taken; GroupBackpressure when the group has
   *   its limit of pending calls across processes (only a store shared by several processes
   *   raises it; the key is checked first); ApiError 503 `audit_unavailable` when the write could
   *   not commit.
   */
  claim(call: NewCall, audit: AuditWrite): Promise<void>;
  /**
   * Stores a running call's outcome with its audit row; resolves once durable.
   * @throws (rejects) Error when the call is not `running` any more (ended elsewhere: nothing is
   *   overwritten); ApiError 503 `audit_unavailable` when the write could not commit.
   */
  end(group: string, requestId: string, end: CallEnd, audit: AuditWrite): Promise<void>;
  /**
   * Appends a refused call's audit row (nothing else is written for a refusal); resolves once durable.
   * @throws (rejects) ApiError 503 `audit_unavailable`.
   */
  recordRefusal(audit: AuditWrite): Promise<void>;
  /**
   * Crash recovery, in one transaction: ends every `running` call whose owner holds no live lease
   * (expired, released or never recorded), except the calls of `self`, as `plan` says, and
   * deletes the expired leases. Writes nothing when there is nothing to do.
   * @param now the clock, Unix ms (read when the transaction starts).
   * @throws (rejects) ApiError 503 `audit_unavailable` when the audit rows cannot be written.
   */
  endInterrupted(self: string, now: () => number, plan: InterruptedPlan): Promise<{ marked: number; expired: ExpiredInstance[] }>;
  /** Number of calls created before `before` (Unix ms) that a purge would delete now. */
  countPurgeable(before: number): Promise<number>;
  /**
   * One purge batch, in one transaction: deletes at most `limit` calls created before `before`
   * (Unix ms) that are not `running`, never the newest row (see `retention.ts`), and appends
   * `audit(deleted)` when it deleted any. Opens no transaction when nothing is eligible.
   * @returns the number of rows deleted.
   */
  purgeBatch(before: number, limit: number, audit: (deleted: number) => AuditWrite): Promise<number>;
  /** True once the connection is closed (shutdown): background writes stop retrying. */
  isClosed(): boolean;
  /**
   * Calls `listener` after each durable commit of claims, outcomes and refusals with the number
   * of writes it carried and its duration in seconds (its fsync included), for metrics.
   */
  observeCommits(listener: (writes: number, seconds: number) => void): void;
  /** Durable commits so far and the writes they carried (for the bench). */
  readonly stats: CommitStats;
}

/** A write of the call path, as data: one savepoint of a group commit batch. */
type CallWrite =
  | { op: 'claim'; call: NewCall; audit: AuditWrite }
  | { op: 'end'; group: string; requestId: string; end: CallEnd; audit: AuditWrite }
  | { op: 'refusal'; audit: AuditWrite };

const COLUMNS = `"group", request_id AS requestId, fingerprint, action, level, resource, summary, task_id AS taskId,
  grant_id AS grantId, status, http_status AS httpStatus, response, receipt, attempts, created_at AS createdAt,
  finished_at AS finishedAt, duration_ms AS durationMs, instance_id AS instanceId`;

/**
 * Rows a purge may delete: not `running`, created before `@before`, found by
 * `ext_calls_status_idx (status, created_at)` (one range per status, covering: the index holds the
 * rowid), and never the newest row (highest rowid, see `retention.ts`).
 */
const PURGEABLE = `FROM ext_calls
  WHERE status IN (${PURGEABLE_STATUSES.map((s) => `'${s}'`).join(', ')}) AND created_at < @before
    AND rowid < (SELECT max(rowid) FROM ext_calls)`;

/** The rowids one purge batch deletes: at most `@limit`. Exported for the query-plan test. */
export const PURGE_SELECT_SQL = `SELECT rowid ${PURGEABLE} LIMIT @limit`;

/**
 * The SQLite implementation of {@link CallStore} on one connection. Claims, outcomes and refusals
 * go through one {@link GroupCommit} (one fsync per batch of concurrent calls). The call path's
 * statements (claim, end, find) and the purge's are raw prepared SQL: the first are the hot path,
 * prepared once per connection and run per call; the purge is written for its query plan (a
 * covering index range per status and the rowid bound, checked by a test). The rest uses drizzle's
 * query builder over `schema.ts`.
 */
export class SqliteCallStore implements CallStore, CallKeyReader {
  private stmts?: {
    find: Statement<[string, string], CallRow>;
    insert: Statement<[NewCall]>;
    end: Statement<[CallEnd & { group: string; requestId: string }]>;
  };
  private commits?: GroupCommit<CallWrite>;
  private readonly listeners: ((writes: number, seconds: number) => void)[] = [];
  private static readonly NO_STATS: CommitStats = Object.freeze({ batches: 0, writes: 0, seconds: 0 });

  constructor(private readonly db: Db) {}

  get stats(): CommitStats {
    return this.commits?.stats ?? SqliteCallStore.NO_STATS;
  }

  findNow(group: string, requestId: string): CallRow | undefined {
    return this.statements().find.get(group, requestId);
  }

  find(group: string, requestId: string): Promise<CallRow | undefined> {
    return settle(() => this.findNow(group, requestId));
  }

  list(filter: CallFilter = {}): Promise<CallRow[]> {
    return settle(() => {
      const where: SQL[] = [];
      if (filter.group !== undefined) where.push(eq(extCalls.group, filter.group));
      if (filter.status !== undefined) where.push(eq(extCalls.status, filter.status));
      if (filter.taskId !== undefined) where.push(eq(extCalls.taskId, filter.taskId));
      if (filter.before !== undefined) where.push(lt(extCalls.createdAt, filter.before));
      const a = filter.after;
      if (a !== undefined) {
        const sameId = and(eq(extCalls.requestId, a.requestId), gt(extCalls.group, a.group));
        const sameAt = and(eq(extCalls.createdAt, a.createdAt), or(gt(extCalls.requestId, a.requestId), sameId));
        where.push(or(lt(extCalls.createdAt, a.createdAt), sameAt)!);
      }
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1001);
      const rows = this.db.orm
        .select()
        .from(extCalls)
        .where(and(...where))
        .orderBy(desc(extCalls.createdAt), asc(extCalls.requestId), asc(extCalls.group))
        .limit(limit)
        .all();
      return rows as CallRow[];
    });
  }

  claim(call: NewCall, audit: AuditWrite): Promise<void> {
    return this.batch().run({ op: 'claim', call, audit });
  }

  end(group: string, requestId: string, end: CallEnd, audit: AuditWrite): Promise<void> {
    return this.batch().run({ op: 'end', group, requestId, end, audit });
  }

  recordRefusal(audit: AuditWrite): Promise<void> {
    return this.batch().run({ op: 'refusal', audit });
  }

  endInterrupted(self: string, now: () => number, plan: InterruptedPlan): Promise<{ marked: number; expired: ExpiredInstance[] }> {
    return settle(() => {
      const orm = this.db.orm;
      const orphans = (at: number) =>
        orm
          .select()
          .from(extCalls)
          .where(
            and(
              eq(extCalls.status, 'running'),
              sql`${extCalls.instanceId} IS NOT ${self}`,
              notExists(
                orm
                  .select({ one: sql`1` })
                  .from(brokerInstances)
                  .where(and(eq(brokerInstances.id, extCalls.instanceId), gt(brokerInstances.leaseUntil, at))),
              ),
            ),
          )
          .orderBy(extCalls.createdAt, extCalls.group, extCalls.requestId)
          .all() as CallRow[];
      const expired = (at: number): ExpiredInstance[] =>
        orm
          .select({ id: brokerInstances.id, pid: brokerInstances.pid, host: brokerInstances.host })
          .from(brokerInstances)
          .where(and(lte(brokerInstances.leaseUntil, at), ne(brokerInstances.id, self)))
          .all();
      const first = now();
      if (orphans(first).length === 0 && expired(first).length === 0) return { marked: 0, expired: [] }; // the common case writes nothing (and works on a read-only database)
      return immediate(this.db, () => {
        const at = now();
        const running = orphans(at);
        const dead = expired(at);
        for (const row of running) {
          const { end, audit } = plan(row, at);
          this.endRow(row.group, row.requestId, end);
          appendActivity(this.db, audit.input, audit.nowMs);
        }
        for (const d of dead) orm.delete(brokerInstances).where(and(eq(brokerInstances.id, d.id), lte(brokerInstances.leaseUntil, at))).run();
        return { marked: running.length, expired: dead };
      });
    });
  }

  countPurgeable(before: number): Promise<number> {
    return settle(() => (this.db.sqlite.prepare(`SELECT count(*) AS n ${PURGEABLE}`).get({ before }) as { n: number }).n);
  }

  purgeBatch(before: number, limit: number, audit: (deleted: number) => AuditWrite): Promise<number> {
    return settle(() => {
      const s = this.db.sqlite;
      // Nothing to purge (the usual hourly case): no write transaction, no lock, and no error on a
      // read-only database.
      if (s.prepare(PURGE_SELECT_SQL).pluck().get({ before, limit: 1 }) === undefined) return 0;
      return immediate(this.db, () => {
        const n = s.prepare(`DELETE FROM ext_calls WHERE rowid IN (${PURGE_SELECT_SQL})`).run({ before, limit }).changes;
        if (n > 0) {
          const a = audit(n);
          appendActivity(this.db, a.input, a.nowMs);
        }
        return n;
      });
    });
  }

  isClosed(): boolean {
    return !this.db.sqlite.open;
  }

  observeCommits(listener: (writes: number, seconds: number) => void): void {
    this.listeners.push(listener);
  }

  /** The hot path's statements, prepared on first use. */
  private statements(): NonNullable<SqliteCallStore['stmts']> {
    if (this.stmts) return this.stmts;
    const s = this.db.sqlite;
    return (this.stmts = {
      find: s.prepare(`SELECT ${COLUMNS} FROM ext_calls WHERE "group" = ? AND request_id = ?`),
      insert: s.prepare(
        `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, receipt, created_at, instance_id)
         VALUES (@group, @requestId, @fingerprint, @action, @level, @resource, @summary, @taskId, @grantId, 'running', @receipt, @createdAt, @instanceId)`,
      ),
      end: s.prepare(
        `UPDATE ext_calls SET status = @status, http_status = @httpStatus, response = @response,
           attempts = @attempts, finished_at = @finishedAt, duration_ms = @durationMs
         WHERE "group" = @group AND request_id = @requestId AND status = 'running'`,
      ),
    });
  }

  /** The group commit of this connection's call writes, made on the first write. */
  private batch(): GroupCommit<CallWrite> {
    return (this.commits ??= new GroupCommit<CallWrite>(
      this.db,
      (w) => this.apply(w),
      (writes, seconds) => {
        for (const l of this.listeners) l(writes, seconds);
      },
    ));
  }

  /** Applies one write inside the batch's transaction (its own savepoint). */
  private apply(w: CallWrite): void {
    if (w.op === 'claim') {
      try {
        this.statements().insert.run(w.call);
      } catch (err) {
        if (isDuplicateKey(err)) throw new DuplicateClaim(`call ${w.call.group}/${w.call.requestId} is already claimed`);
        throw err;
      }
    } else if (w.op === 'end') {
      this.endRow(w.group, w.requestId, w.end);
    }
    appendActivity(this.db, w.audit.input, w.audit.nowMs);
  }

  /** Stores a running call's outcome; throws when it is not `running` (its transaction then rolls back). */
  private endRow(group: string, requestId: string, end: CallEnd): void {
    if (this.statements().end.run({ ...end, group, requestId }).changes !== 1) throw new Error(`call ${group}/${requestId} is not running`);
  }
}

/** Runs synchronous SQLite work as a settled promise: its value, or a rejection with what it threw. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** True for the SQLite error a second insert of the same (group, request id) raises. */
function isDuplicateKey(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
