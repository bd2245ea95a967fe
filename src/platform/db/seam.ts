/**
 * The store seam: how a module reaches its tables, shaped so that a second, asynchronous engine
 * (PostgreSQL) can be put behind it without touching a service.
 *
 * - Each module has a `store.ts` declaring its store as an interface (`GrantStore`,
 *   `TokenStore`, `AuditStore`, …) and its SQLite implementation (`sqliteGrantStore(db, clock)`).
 *   The store is the only place the module writes SQL, in one style: drizzle's query builder over
 *   the module's `schema.ts`. Raw prepared SQL only where a hot path needs it, with a comment
 *   saying why (the call path's claim and outcome, the audit append).
 * - Every store method returns a Promise. The SQLite implementation does its work synchronously
 *   and returns a settled promise ({@link settled}); a failure is a rejection, never a throw.
 * - Every write method is ONE transaction: it applies the change and appends its audit rows
 *   (`appendActivities`) together, or changes nothing and rejects. Nothing is awaited inside a
 *   SQLite transaction.
 * - A read-modify-write (an idempotency look-up, an If-Match version check, a state-machine
 *   check) takes a synchronous, pure {@link Plan}: inside the transaction the store reads the
 *   current row(s) and the clock, calls `plan(current, nowMs)`, and writes what the plan returns
 *   ({@link Planned}: the write, the audit rows, the result). A plan refuses by throwing an
 *   `ApiError`, which rolls the transaction back. {@link runPlan} is that loop for SQLite.
 * - Services hold the logic and never SQL; they are async where they call a store, and take a
 *   narrow deps object their module declares (`GrantDeps`…), which the application's deps
 *   satisfy structurally. The application picks the implementation of every store in one place
 *   (`createStores` in `src/app/deps.ts`).
 * - The decision path of an external call reads the in-memory read model synchronously; it is
 *   not a store.
 * - On PostgreSQL (several replicas on one database) the same plans run through {@link runPlanPg}:
 *   a READ COMMITTED transaction that takes the store's advisory locks first, reads the rows the
 *   plan decides on with `SELECT … FOR UPDATE` (a concurrent writer of the same rows, on any
 *   replica, waits and then reads what this one wrote), appends the audit rows last (the audit
 *   lock), and runs again when a unique index refuses a row a concurrent replica committed first.
 */
import { appendActivities, type ActivityInput } from '../audit/trail.js';
import { appendActivitiesPg } from '../audit/trail.pg.js';
import type { Clock } from '../clock.js';
import { ApiError } from '../http/problem.js';
import { immediate, type Db } from './open.js';
import { advisoryXactLock, failClosedPg, pgErrorCode, pgErrorText, type PG_LOCKS, type PgDb, type PgTx } from './pg.js';

/** What a {@link Plan} decided: the change to write (if any), its audit rows, and the answer. */
export interface Planned<W, T> {
  /** The change, in the store method's own terms; absent when there is nothing to write (a replay, a no-op). */
  write?: W;
  /** Audit rows appended in the same transaction, stamped with the plan's `nowMs`. */
  audit?: readonly ActivityInput[];
  /** What the store method resolves to. */
  result: T;
}

/**
 * The decision of one read-modify-write, made inside the store's transaction: synchronous, with
 * no I/O of its own, from the rows the store read (`current`) and the clock read at the start of
 * the transaction (`nowMs`, Unix ms).
 * @throws ApiError to refuse; the transaction rolls back and the store method rejects with it.
 */
export type Plan<C, W, T> = (current: C, nowMs: number) => Planned<W, T>;

/**
 * Runs `fn` now and returns its value as a resolved promise, or its exception as a rejected one:
 * how a synchronous (SQLite) store method keeps the asynchronous contract.
 */
export function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * One planned write on SQLite, in one `BEGIN IMMEDIATE` transaction (a savepoint when the caller
 * holds one): reads the clock, then `read()` the current state, calls `plan`, applies its write
 * with `apply`, appends its audit rows, commits.
 * @returns the plan's result; rejects with what `read`, `plan` or `apply` throws (nothing is
 *   written), or ApiError 503 `audit_unavailable` when the audit rows cannot be appended.
 */
export function runPlan<C, W, T>(db: Db, clock: Clock, read: () => C, plan: Plan<C, W, T>, apply: (write: W, current: C, nowMs: number) => void): Promise<T> {
  return settled(() =>
    immediate(db, () => {
      const now = clock.now();
      const current = read();
      const out = plan(current, now);
      if (out.write !== undefined) apply(out.write, current, now);
      if (out.audit !== undefined && out.audit.length > 0) appendActivities(db, [...out.audit], now);
      return out.result;
    }),
  );
}

/**
 * Appends audit rows alone, in a transaction of their own (a refusal whose change rolled back, a
 * token minted: nothing else to store), stamped with `clock`'s now.
 * @returns resolves once committed; rejects with ApiError 503 `audit_unavailable` when they cannot be written.
 */
export function appendAlone(db: Db, clock: Clock, rows: readonly ActivityInput[]): Promise<void> {
  return settled(() => {
    immediate(db, () => appendActivities(db, [...rows], clock.now()));
  });
}

/** The key of one of the broker's PostgreSQL advisory locks (`PG_LOCKS`). */
export type PgLockKey = (typeof PG_LOCKS)[keyof typeof PG_LOCKS];

/**
 * How one planned write runs on PostgreSQL ({@link runPlanPg}): the advisory locks to take first,
 * how to read the current state (locking the rows it reads), and how to write the plan's change.
 */
export interface PgPlanSteps<C, W> {
  /**
   * Advisory locks (`pg_advisory_xact_lock`) taken first, in this order, before any row lock and
   * before the audit append's own lock; every writer of the same tables names the same ones in
   * the same order (grant writers: `PG_LOCKS.grantChanges`), so writers cannot deadlock.
   */
  locks?: readonly PgLockKey[];
  /**
   * Reads the current state inside the transaction, locking the rows the plan decides on
   * (`SELECT … FOR UPDATE`), so a concurrent writer of the same rows on any replica waits for this
   * one to commit and then reads what it wrote.
   */
  read(tx: PgTx): Promise<C>;
  /** Writes the plan's change (absent: the plan never writes, it only appends audit rows). */
  apply?(tx: PgTx, write: W, current: C, nowMs: number): Promise<void>;
}

/** How many times {@link runPlanPg} runs a planned write that a concurrent one keeps conflicting with. */
export const PG_PLAN_ATTEMPTS = 3;

/**
 * SQLSTATEs after which a planned write is run again from the start: 23505 unique_violation (a
 * concurrent transaction, on another replica, committed the row this plan found missing: the next
 * attempt reads it, so the plan answers a replay, a 422 or a no-op instead), 40001
 * serialization_failure and 40P01 deadlock_detected (the server rolled the attempt back).
 */
const PG_RETRY_SQLSTATES = new Set(['23505', '40001', '40P01']);

/**
 * One planned write on PostgreSQL, in one READ COMMITTED transaction on a pooled connection:
 * takes `steps.locks`, `steps.read`s the current state under row locks, reads the clock, calls
 * `plan`, applies its write with `steps.apply`, appends its audit rows (`appendActivitiesPg`,
 * which takes the audit lock last), commits. The same contract as {@link runPlan}: the plan and
 * its audit rows commit together or not at all. When a statement fails with a unique violation
 * (the row the plan found missing was committed meanwhile by another replica; a unique index is
 * the last line of defence) or a serialization failure, the attempt rolls back and the whole
 * read-plan-write runs again, at most {@link PG_PLAN_ATTEMPTS} times in all.
 * @returns the plan's result.
 * @throws (rejects with) what `plan` throws (nothing is written); ApiError 503 `audit_unavailable`
 *   when the audit rows cannot be appended; ApiError 503 `service_unavailable` when the database
 *   cannot be reached, is read-only, or refuses (`failClosedPg`), or when concurrent writes still
 *   conflicted after the last attempt; the driver's error for any other failed statement.
 */
export function runPlanPg<C, W, T>(pg: PgDb, clock: Clock, steps: PgPlanSteps<C, W>, plan: Plan<C, W, T>): Promise<T> {
  const attempt = () =>
    pg.orm.transaction(
      async (tx) => {
        for (const key of steps.locks ?? []) await tx.execute(advisoryXactLock(key));
        const current = await steps.read(tx);
        const now = clock.now();
        const out = plan(current, now);
        if (out.write !== undefined) {
          if (!steps.apply) throw new Error('runPlanPg: the plan returned a write but the store gave no apply step');
          await steps.apply(tx, out.write, current, now);
        }
        if (out.audit !== undefined && out.audit.length > 0) await appendActivitiesPg(tx, [...out.audit], now);
        return out.result;
      },
      { isolationLevel: 'read committed' },
    );
  return failClosedPg(async () => {
    for (let n = 1; ; n += 1) {
      try {
        return await attempt();
      } catch (err) {
        if (!PG_RETRY_SQLSTATES.has(pgErrorCode(err) ?? '')) throw err;
        if (n >= PG_PLAN_ATTEMPTS) {
          throw new ApiError('service_unavailable', 'Concurrent writes to the same record kept conflicting, so nothing was changed; try again.', { cause: pgErrorText(err) }, { 'Retry-After': '1' });
        }
      }
    }
  }, pg.label);
}

/**
 * Appends audit rows alone on PostgreSQL, in a transaction of their own, stamped with `clock`'s
 * now: {@link appendAlone} for the second engine.
 * @returns resolves once committed; rejects with ApiError 503 `audit_unavailable` when they cannot
 *   be written, or 503 `service_unavailable` when the database cannot be reached.
 */
export function appendAlonePg(pg: PgDb, clock: Clock, rows: readonly ActivityInput[]): Promise<void> {
  return runPlanPg<null, never, void>(pg, clock, { read: async () => null }, () => ({ audit: rows, result: undefined }));
}
