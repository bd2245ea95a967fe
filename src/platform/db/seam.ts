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
 */
import { appendActivities, type ActivityInput } from '../audit/trail.js';
import type { Clock } from '../clock.js';
import { immediate, type Db } from './open.js';

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
