/**
 * The calls' store on PostgreSQL: {@link PgCallStore}, the {@link CallStore} that several broker
 * processes (replicas) serve from one database, with drizzle's query builder over the `pg-core`
 * mirror of `ext_calls` (`schema.pg.ts`).
 *
 * Every write is one READ COMMITTED transaction that applies the change and appends its audit row
 * (`appendActivitiesPg`, which takes the audit chain's advisory lock, always the last lock taken),
 * or changes nothing and rejects. What the SQLite store keeps in one process holds across replicas:
 * - the inflight lock and idempotency: the claim inserts the `running` row under the primary key
 *   (group, request id); a key already claimed, on any replica, is {@link DuplicateClaim};
 * - backpressure in total: the claim counts the group's `running` rows under the group's advisory
 *   lock (`PG_KEYED_LOCKS.callGroup`), held to its commit, so the group's claims on every replica
 *   take turns and never exceed `maxPendingPerGroup` ({@link GroupBackpressure});
 * - crash recovery by ownership: only calls whose owner holds no live lease are ended, each by one
 *   replica (`FOR UPDATE SKIP LOCKED`).
 *
 * Unlike the SQLite store there is no group commit: each write is a transaction of its own (the
 * server's WAL does the batching of concurrent commits). The decision path's synchronous read
 * (`CallKeyReader.findNow`) has no PostgreSQL form: the call path reads the row with
 * {@link PgCallStore.find} before it decides.
 */
import { and, asc, desc, eq, gt, inArray, lt, lte, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import { appendActivitiesPg } from '../../platform/audit/trail.pg.js';
import { driverError, failClosedPg, keyedAdvisoryXactLock, PG_KEYED_LOCKS, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { ApiError } from '../../platform/http/problem.js';
import { brokerInstances } from '../../platform/lease/schema.pg.js';
import type { CommitStats } from './commit.js';
import { extCalls } from './schema.pg.js';
import {
  PURGEABLE_STATUSES,
  DuplicateClaim,
  GroupBackpressure,
  type AuditWrite,
  type CallEnd,
  type CallFilter,
  type CallRow,
  type CallStore,
  type ExpiredInstance,
  type InterruptedPlan,
  type NewCall,
} from './store.js';

/** What {@link PgCallStore} needs besides the database. */
export interface PgCallStoreOptions {
  /** The most pending (`running`) calls a group may have across all replicas (`maxPendingPerGroup`, at least 1). */
  maxPendingPerGroup: number;
}

/** Statuses a purge may delete: every one but `running` and `awaiting_approval`. */
const FINISHED = [...PURGEABLE_STATUSES];

/** The text columns ordered byte by byte, as SQLite orders them, whatever the database's collation. */
const bytewise = (col: typeof extCalls.requestId | typeof extCalls.group): SQL => sql`${col} COLLATE "C"`;

/** The PostgreSQL implementation of {@link CallStore}; see the module note. */
export class PgCallStore implements CallStore {
  private readonly listeners: ((writes: number, seconds: number) => void)[] = [];
  private readonly totals: CommitStats = { batches: 0, writes: 0, seconds: 0 };

  constructor(
    private readonly db: PgDb,
    private readonly opts: PgCallStoreOptions,
  ) {
    if (!(opts.maxPendingPerGroup >= 1)) throw new Error(`maxPendingPerGroup must be at least 1 (got ${opts.maxPendingPerGroup})`);
  }

  /** Commits so far: one per claim, outcome and refusal (a "batch" is one write here). */
  get stats(): CommitStats {
    return this.totals;
  }

  find(group: string, requestId: string): Promise<CallRow | undefined> {
    return this.read(async () => {
      const [row] = await this.db.orm
        .select()
        .from(extCalls)
        .where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId)));
      return row as CallRow | undefined;
    });
  }

  list(filter: CallFilter = {}): Promise<CallRow[]> {
    return this.read(async () => {
      const where: SQL[] = [];
      if (filter.group !== undefined) where.push(eq(extCalls.group, filter.group));
      if (filter.status !== undefined) where.push(eq(extCalls.status, filter.status));
      if (filter.taskId !== undefined) where.push(eq(extCalls.taskId, filter.taskId));
      if (filter.before !== undefined) where.push(lt(extCalls.createdAt, filter.before));
      const a = filter.after;
      if (a !== undefined) {
        const sameId = and(eq(extCalls.requestId, a.requestId), gt(bytewise(extCalls.group), a.group));
        const sameAt = and(eq(extCalls.createdAt, a.createdAt), or(gt(bytewise(extCalls.requestId), a.requestId), sameId));
        where.push(or(lt(extCalls.createdAt, a.createdAt), sameAt)!);
      }
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1001);
      const rows = await this.db.orm
        .select()
        .from(extCalls)
        .where(and(...where))
        .orderBy(desc(extCalls.createdAt), asc(bytewise(extCalls.requestId)), asc(bytewise(extCalls.group)))
        .limit(limit);
      return rows as CallRow[];
    });
  }

  claim(call: NewCall, audit: AuditWrite): Promise<void> {
    return this.write('The call and its audit rows could not be stored, so the broker refused it.', async (tx) => {
      // The group's lock first (the audit lock is always last): the group's claims on every
      // replica take turns from here to their commit, so the count below stays true until then.
      await tx.execute(keyedAdvisoryXactLock(PG_KEYED_LOCKS.callGroup, call.group));
      // A statement of its own, after the wait: at READ COMMITTED it sees every claim committed before it.
      const { rows } = await tx.execute<{ running: number; taken: boolean }>(sql`
        SELECT count(*) FILTER (WHERE ${extCalls.status} = 'running')::int AS running,
               coalesce(bool_or(${extCalls.requestId} = ${call.requestId}), false) AS taken
        FROM ${extCalls}
        WHERE ${extCalls.group} = ${call.group} AND (${extCalls.status} = 'running' OR ${extCalls.requestId} = ${call.requestId})`);
      const { running, taken } = rows[0] ?? { running: 0, taken: false };
      // The key before the count, as the decision order does (step 3 before step 4): a retry of a
      // call in flight is answered as such, not as backpressure.
      if (taken) throw new DuplicateClaim(`call ${call.group}/${call.requestId} is already claimed`);
      if (running >= this.opts.maxPendingPerGroup) throw new GroupBackpressure(call.group, running, this.opts.maxPendingPerGroup);
      await tx.insert(extCalls).values({ ...call, status: 'running' });
      await appendActivitiesPg(tx, [audit.input], audit.nowMs);
    });
  }

  end(group: string, requestId: string, end: CallEnd, audit: AuditWrite): Promise<void> {
    return this.write('The call\'s outcome and its audit rows could not be stored.', async (tx) => {
      await endRow(tx, group, requestId, end);
      await appendActivitiesPg(tx, [audit.input], audit.nowMs);
    });
  }

  recordRefusal(audit: AuditWrite): Promise<void> {
    return this.write('The refusal\'s audit row could not be stored, so the broker refused the call.', async (tx) => {
      await appendActivitiesPg(tx, [audit.input], audit.nowMs);
    });
  }

  endInterrupted(self: string, now: () => number, plan: InterruptedPlan): Promise<{ marked: number; expired: ExpiredInstance[] }> {
    const orm = this.db.orm;
    /** Running calls whose owner (not `self`) holds no lease live at `at`. */
    const orphaned = (at: number) =>
      and(
        eq(extCalls.status, 'running'),
        sql`${extCalls.instanceId} IS DISTINCT FROM ${self}`,
        notExists(
          orm
            .select({ one: sql`1` })
            .from(brokerInstances)
            .where(and(eq(brokerInstances.id, extCalls.instanceId), gt(brokerInstances.leaseUntil, at))),
        ),
      );
    const expiredAt = (at: number) => and(lte(brokerInstances.leaseUntil, at), ne(brokerInstances.id, self));
    return this.read(async () => {
      // The common case writes nothing (and works on a read-only standby).
      const first = now();
      const [orphan] = await orm.select({ one: sql`1` }).from(extCalls).where(orphaned(first)).limit(1);
      const [dead] = await orm.select({ one: sql`1` }).from(brokerInstances).where(expiredAt(first)).limit(1);
      if (orphan === undefined && dead === undefined) return { marked: 0, expired: [] };
      return this.db.orm.transaction(
        async (tx) => {
          const at = now();
          // Rows another replica's recovery (or a late outcome) holds are skipped: each call is ended once.
          const running = (await tx
            .select()
            .from(extCalls)
            .where(orphaned(at))
            .orderBy(asc(extCalls.createdAt), asc(bytewise(extCalls.group)), asc(bytewise(extCalls.requestId)))
            .for('update', { of: extCalls, skipLocked: true })) as CallRow[];
          const audits: AuditWrite[] = [];
          for (const row of running) {
            const { end, audit } = plan(row, at);
            await endRow(tx, row.group, row.requestId, end);
            audits.push(audit);
          }
          // In order, one append per run of rows stamped alike (each row keeps its own `ts`).
          for (let i = 0; i < audits.length; ) {
            let j = i + 1;
            while (j < audits.length && audits[j]!.nowMs === audits[i]!.nowMs) j += 1;
            await appendActivitiesPg(tx, audits.slice(i, j).map((a) => a.input), audits[i]!.nowMs);
            i = j;
          }
          const expired = await tx
            .delete(brokerInstances)
            .where(expiredAt(at))
            .returning({ id: brokerInstances.id, pid: brokerInstances.pid, host: brokerInstances.host });
          return { marked: running.length, expired };
        },
        { isolationLevel: 'read committed' },
      );
    });
  }

  countPurgeable(before: number): Promise<number> {
    return this.read(async () => {
      const [row] = await this.db.orm
        .select({ n: sql<number>`count(*)::int` })
        .from(extCalls)
        .where(purgeable(before));
      return row?.n ?? 0;
    });
  }

  purgeBatch(before: number, limit: number, audit: (deleted: number) => AuditWrite): Promise<number> {
    return this.read(async () => {
      // Nothing to purge (the usual hourly case): no transaction, and no error on a read-only standby.
      const [any] = await this.db.orm.select({ one: sql`1` }).from(extCalls).where(purgeable(before)).limit(1);
      if (any === undefined) return 0;
      return this.db.orm.transaction(
        async (tx) => {
          // At most `limit` rows, skipping rows another replica's purge holds. `ctid` names a row
          // version (PostgreSQL has no DELETE … LIMIT), locked by the subquery until the commit.
          const batch = tx
            .select({ ctid: sql`ctid` })
            .from(extCalls)
            .where(purgeable(before))
            .limit(limit)
            .for('update', { skipLocked: true });
          const deleted = await tx
            .delete(extCalls)
            .where(sql`ctid = ANY(ARRAY(${batch}))`)
            .returning({ group: extCalls.group });
          if (deleted.length > 0) {
            const a = audit(deleted.length);
            await appendActivitiesPg(tx, [a.input], a.nowMs);
          }
          return deleted.length;
        },
        { isolationLevel: 'read committed' },
      );
    });
  }

  isClosed(): boolean {
    return this.db.pool.ending || this.db.pool.ended;
  }

  observeCommits(listener: (writes: number, seconds: number) => void): void {
    this.listeners.push(listener);
  }

  /** A read, or a write that reports its own failures: a database that is not there is 503 `service_unavailable`. */
  private read<T>(fn: () => Promise<T>): Promise<T> {
    // drizzle wraps a statement's error with the statement's text and parameters; reject with the driver's.
    return failClosedPg(fn, this.db.label).catch((err: unknown) => {
      throw driverError(err);
    });
  }

  /**
   * One write of the call path (a claim, an outcome, a refusal) in one READ COMMITTED transaction,
   * counted for {@link observeCommits} once committed.
   * @throws (rejects) DuplicateClaim, GroupBackpressure, or the Error of an outcome for a call not
   *   running, as `fn` threw them (nothing written); else ApiError 503 `audit_unavailable` naming
   *   the driver's error as `cause`, whatever failed (the lock, the statements, the audit append,
   *   the connection, the commit): nothing ran, or (for an outcome) it is not recorded.
   */
  private async write(detail: string, fn: (tx: PgTx) => Promise<void>): Promise<void> {
    const started = performance.now();
    try {
      await this.db.orm.transaction(fn, { isolationLevel: 'read committed' });
    } catch (err) {
      if (err instanceof DuplicateClaim || err instanceof GroupBackpressure || err instanceof NotRunning) throw err;
      if (err instanceof ApiError && err.code === 'audit_unavailable') throw err;
      const cause = driverError(err);
      // A second insert of the key that slipped past the check (it cannot under the group's lock): the same answer.
      if (isUniqueViolation(cause, 'ext_calls_pk')) throw new DuplicateClaim(`call is already claimed (${(cause as Error).message})`);
      throw new ApiError('audit_unavailable', detail, { cause: cause instanceof Error ? cause.message : String(cause) });
    }
    const seconds = (performance.now() - started) / 1000;
    this.totals.batches += 1;
    this.totals.writes += 1;
    this.totals.seconds += seconds;
    for (const l of this.listeners) l(1, seconds);
  }
}

/** The rejection of an outcome for a call that is not `running` any more (nothing is overwritten). */
class NotRunning extends Error {
  override name = 'NotRunning';
}

/** Stores a running call's outcome in `tx`; throws {@link NotRunning} when it is not `running` (its transaction then rolls back). */
async function endRow(tx: PgTx, group: string, requestId: string, end: CallEnd): Promise<void> {
  const done = await tx
    .update(extCalls)
    .set(end)
    .where(and(eq(extCalls.group, group), eq(extCalls.requestId, requestId), eq(extCalls.status, 'running')))
    .returning({ group: extCalls.group });
  if (done.length !== 1) throw new NotRunning(`call ${group}/${requestId} is not running`);
}

/** Rows a purge may delete: not `running`, created before `before` (Unix ms); found by `ext_calls_status_idx`. */
function purgeable(before: number): SQL {
  return and(inArray(extCalls.status, FINISHED), lt(extCalls.createdAt, before))!;
}

/** True for PostgreSQL's unique violation (SQLSTATE 23505), of `constraint` when given. */
function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
