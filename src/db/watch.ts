/**
 * A change watch for one SQLite connection: one cheap poll that says whether the database may
 * have changed since the last poll, so in-memory caches (keys, grants, recent call keys) skip
 * their own SQL when nothing moved.
 *
 * The poll reads `total_changes()` (rows this connection has inserted, updated or deleted; no
 * read transaction, ~0.2 µs) and `PRAGMA data_version` (moves when ANOTHER connection — another
 * process, the CLI, the call path's writer thread — commits; it opens a read transaction, which in
 * WAL mode costs two `fcntl` lock calls on the `-shm` file: ~3–5 µs on a small VM, about the cost
 * of any single-row SELECT). When either moved, the watch's stamp advances, and each consumer that
 * sees a stamp other than the one it last handled runs its own cheap specific check (a counter or
 * `MAX(seq)` read) before trusting its memory.
 */
import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { Db } from './open.js';

/** What {@link ChangeWatch.poll} answers inside an open transaction: read the database directly. */
export const IN_TRANSACTION = -1;

const watches = new WeakMap<Database.Database, ChangeWatch>();

/**
 * The change watch of one connection. Obtain it with {@link ChangeWatch.of} so every consumer of a
 * connection shares one watch (and one prepared statement).
 *
 * Contract for a consumer: keep the stamp it last synchronized at; call {@link poll}; when the
 * answer is {@link IN_TRANSACTION}, read the database directly and cache nothing (what it would
 * read may still roll back); when it differs from the kept stamp, run its specific check, then keep
 * the new stamp. A change committed before `poll` is called is always reported by it.
 */
export class ChangeWatch {
  private readonly stmt: Statement<[], [number, number]>;
  private own = -1;
  private other = -1;
  /** Set by a poll inside a transaction (and before the first poll): the next poll outside one reports a change. */
  private dirty = true;
  private stamp = 0;
  /** Depth of {@link hold}; while > 0, polls answer {@link heldStamp} without SQL. */
  private holds = 0;
  private heldStamp = 0;

  private constructor(private readonly sqlite: Database.Database) {
    this.stmt = sqlite.prepare('SELECT total_changes(), data_version FROM pragma_data_version').raw(true) as Statement<[], [number, number]>;
  }

  /** The shared watch of `db`'s connection (created on first use). */
  static of(db: Db): ChangeWatch {
    let w = watches.get(db.sqlite);
    if (!w) watches.set(db.sqlite, (w = new ChangeWatch(db.sqlite)));
    return w;
  }

  /**
   * Polls the connection: one prepared statement (none while {@link hold} runs).
   * @returns a stamp (≥ 1) that differs from every earlier answer when the database may have
   *   changed since the previous poll (a write by this connection, or a commit by any other), or
   *   {@link IN_TRANSACTION} while the connection is inside a transaction.
   */
  poll(): number {
    if (this.holds > 0) return this.heldStamp;
    if (this.sqlite.inTransaction) {
      this.dirty = true;
      return IN_TRANSACTION;
    }
    const [own, other] = this.stmt.get()!;
    if (own !== this.own || other !== this.other || this.dirty) {
      this.own = own;
      this.other = other;
      this.dirty = false;
      this.stamp += 1;
    }
    return this.stamp;
  }

  /**
   * Runs `fn` with one poll for all of it: polls inside `fn` answer what the poll on entry did, so
   * the consumers `fn` reads (the decision path's call keys and grants) share one snapshot instant,
   * the instant of entry. `fn` must be synchronous and must not write on this connection.
   *
   * With `polledSinceArrival`, the caller vouches that this watch was polled after the request it
   * serves arrived (a signed request's key lookup in step 1 polls it): the last poll's answer is
   * reused and no SQL runs. Every change committed before the request arrived was reported by that
   * poll or an earlier one, so the request still sees it; what commits later is concurrent with the
   * request. When the last poll was inside a transaction (or there was none), it polls anyway.
   * @returns what `fn` returns (its exceptions propagate).
   */
  hold<T>(fn: () => T, polledSinceArrival = false): T {
    if (this.holds === 0) this.heldStamp = polledSinceArrival && !this.dirty ? this.stamp : this.poll();
    this.holds += 1;
    try {
      return fn();
    } finally {
      this.holds -= 1;
    }
  }
}
