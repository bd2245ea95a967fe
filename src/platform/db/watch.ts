/**
 * A change watch for one SQLite connection: one cheap poll that says whether the database may
 * have changed since the last poll, so in-memory caches (keys, grants, recent call keys) skip
 * their own SQL when nothing moved.
 *
 * How it polls, measured on the bench (d) fixture (2-vCPU VM):
 * - A database in WAL mode (the broker's): one `pread` of the WAL-index header, the first 48 bytes
 *   of the `-shm` file (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Every
 *   commit, by this connection or any other (another process, the CLI), publishes a new header there (its frame count, change counter and checksums), and it
 *   is what every reader consults to see a commit, so an unchanged header means no commit since the
 *   last poll. ~1.5 µs, and it cut step 1 of bench (d) by ~13 µs at p50 against the SQL poll.
 * - Otherwise (rollback journal, in-memory database, no `-shm` file): one prepared statement
 *   reading `total_changes()` (this connection's writes, no read transaction) and
 *   `PRAGMA data_version` (moves when ANOTHER connection commits). `data_version` opens a read
 *   transaction, which in WAL mode costs two `fcntl` lock calls: ~4–5 µs in a loop, more amid other
 *   work, the cost of any single-row SELECT.
 *
 * The `-shm` descriptor is opened once per process and file and never closed: closing any
 * descriptor of a file releases every POSIX lock the process holds on it, and SQLite's connections
 * in this process hold their shared-memory locks there. The file
 * cannot be replaced while this connection is open (SQLite deletes or truncates it only when no
 * connection uses it), so one descriptor per file suffices; a file recreated later (a new
 * database at the same path) gets a new one.
 *
 * When the poll sees a change, the watch's stamp advances, and each consumer that sees a stamp
 * other than the one it last handled runs its own cheap specific check (a counter or `MAX(seq)`
 * read) before trusting its memory.
 */
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { Db } from './open.js';

/** What {@link ChangeWatch.poll} answers inside an open transaction: read the database directly. */
export const IN_TRANSACTION = -1;

/** Bytes of the first copy of the WAL-index header, at offset 0 of the `-shm` file. */
const WAL_INDEX_HEADER_BYTES = 48;

const watches = new WeakMap<Database.Database, ChangeWatch>();

/** `-shm` descriptors by `dev:ino`: opened once per process, never closed (see the module note). */
const shmDescriptors = new Map<string, number>();

/**
 * The descriptor of `db`'s `-shm` file, when the connection is in WAL mode and has it open (the
 * caller has just read through the connection); null otherwise (the watch then polls with SQL).
 *
 * The file is found as SQLite names it: beside the database's real path (SQLite resolves symbolic
 * links). Where `/proc/self/fd` exists (Linux), it must also be open in this process (by SQLite),
 * so a stale `-shm` file can never stand in for the live one.
 */
function shmDescriptor(db: Db): number | null {
  if (db.sqlite.memory || db.sqlite.pragma('journal_mode', { simple: true }) !== 'wal') return null;
  let file: string;
  let st: fs.BigIntStats;
  try {
    file = `${fs.realpathSync(db.path)}-shm`;
    st = fs.statSync(file, { bigint: true });
  } catch {
    return null;
  }
  const key = `${st.dev}:${st.ino}`;
  let fd = shmDescriptors.get(key);
  if (fd === undefined) {
    if (!openInThisProcess(file)) return null;
    fd = fs.openSync(file, 'r');
    shmDescriptors.set(key, fd);
  }
  return fd;
}

/** True when a descriptor of this process refers to `file`, or when that cannot be listed (no `/proc`). */
function openInThisProcess(file: string): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return true;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) return true;
    } catch {
      // closed meanwhile (the directory's own descriptor, say)
    }
  }
  return false;
}

/**
 * The change watch of one connection. Obtain it with {@link ChangeWatch.of} so every consumer of a
 * connection shares one watch.
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
  /** The `-shm` descriptor in WAL mode, else null (SQL poll). */
  private shm: number | null;
  private readonly header = Buffer.alloc(WAL_INDEX_HEADER_BYTES);
  private readonly lastHeader = Buffer.alloc(WAL_INDEX_HEADER_BYTES);
  /** Set by a poll inside a transaction (and before the first poll): the next poll outside one reports a change. */
  private dirty = true;
  private stamp = 0;
  /** Depth of {@link hold}; while > 0, polls answer {@link heldStamp} without SQL. */
  private holds = 0;
  private heldStamp = 0;

  private constructor(db: Db) {
    this.sqlite = db.sqlite;
    this.stmt = db.sqlite.prepare('SELECT total_changes(), data_version FROM pragma_data_version').raw(true) as Statement<[], [number, number]>;
    this.stmt.get(); // a read, so the connection has its WAL index open before the -shm is looked for
    this.shm = shmDescriptor(db);
  }

  private readonly sqlite: Database.Database;

  /** The shared watch of `db`'s connection (created on first use). */
  static of(db: Db): ChangeWatch {
    let w = watches.get(db.sqlite);
    if (!w) watches.set(db.sqlite, (w = new ChangeWatch(db)));
    return w;
  }

  /** How this watch polls: `wal-index` (a read of the `-shm` header) or `sql` (the statement). */
  get method(): 'wal-index' | 'sql' {
    return this.shm === null ? 'sql' : 'wal-index';
  }

  /**
   * Polls the connection: one `pread` of the WAL-index header, or one prepared statement (see the
   * module note); nothing while {@link hold} runs.
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
    if (this.shm !== null) {
      let n: number;
      try {
        n = fs.readSync(this.shm, this.header, 0, WAL_INDEX_HEADER_BYTES, 0);
      } catch {
        n = -1; // unreadable (never expected): poll with SQL from now on
        this.shm = null;
      }
      if (n === WAL_INDEX_HEADER_BYTES) {
        if (!this.header.equals(this.lastHeader) || this.dirty) {
          this.header.copy(this.lastHeader);
          this.dirty = false;
          this.stamp += 1;
        }
        return this.stamp;
      }
      // A short read (never expected while the connection is open) counts as a change.
      this.lastHeader.fill(0);
      this.stamp += 1;
      if (this.shm !== null) return this.stamp;
      this.dirty = true;
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
