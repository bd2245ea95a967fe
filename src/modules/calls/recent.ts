/**
 * The idempotency keys (group, request id) of recent calls, in memory, so decision step 3 answers
 * "new key" without SQL (README "Performance").
 */
import type { Statement } from 'better-sqlite3';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { ChangeWatch, IN_TRANSACTION } from '../../platform/db/watch.js';

/** How long a claimed key is kept in memory at least, in ms: the 7 days the README promises. */
export const RECENT_KEYS_WINDOW_MS = 7 * 24 * 3600 * 1000;
/** At most this many keys per generation (two generations are kept): ~10 MB of heap each when full. */
export const RECENT_KEYS_PER_GENERATION = 500_000;

/** One generation of keys: 32-bit hashes (small integers, no allocation per key) and its start. */
interface Generation {
  hashes: Set<number>;
  /** Unix ms of the oldest key in it (when it started, for a generation filled live). */
  since: number;
}

interface KeyRow {
  rowid: number;
  group: string;
  requestId: string;
  createdAt: number;
}

/**
 * The keys of the calls claimed in the last 7 days (or the last 1 000 000 calls, whichever is
 * fewer), from every connection and process, as 32-bit hashes of `group` and `request_id`.
 *
 * {@link mayExist} answers false only for a key that is certainly not in `ext_calls` among the
 * rows it holds: a hash absent from the memory. True means "maybe" (the key, or a 32-bit hash
 * collision: with 1 000 000 keys held, about 1 new key in 4 300): the caller reads the row. Keys
 * older than the window (or pushed out by the cap) are forgotten, so for them the answer can be a
 * wrong "new": the claim's primary key refuses the second insert, and the caller then asks the
 * database.
 *
 * Freshness: loaded at construction (newest rows first, by rowid); caught up by rowid (`ext_calls`
 * rows are deleted only by the purge, which never deletes the newest row (`retention.ts`), so a new
 * row always has the highest rowid) whenever the connection's
 * {@link ChangeWatch} says the database may have changed, which covers claims made by this
 * connection (the group commit) or another broker process. Inside a transaction the
 * answer is always "maybe" and nothing is cached.
 *
 * Memory: two generations; a key is added to the current one; the current generation becomes the
 * previous one when it is 7 days old or holds {@link RECENT_KEYS_PER_GENERATION} keys, and the
 * previous one is then dropped. So a key stays at least 7 days unless more than 500 000 calls
 * follow it within that time.
 */
export class RecentCallKeys {
  private readonly watch: ChangeWatch;
  private readonly sinceStmt: Statement<[number], KeyRow>;
  private current: Generation;
  private previous: Generation | null = null;
  /** The highest `ext_calls` rowid folded in. */
  private rowid = 0;
  /** The watch stamp the memory was last caught up at. */
  private stamp = 0;

  constructor(
    db: Db,
    private readonly clock: Clock,
  ) {
    this.watch = ChangeWatch.of(db);
    this.sinceStmt = db.sqlite.prepare(
      'SELECT rowid, "group", request_id AS requestId, created_at AS createdAt FROM ext_calls WHERE rowid > ? ORDER BY rowid',
    ) as Statement<[number], KeyRow>;
    const now = clock.now();
    this.current = { hashes: new Set(), since: now };
    this.stamp = this.watch.poll();
    this.load(db, now);
  }

  /** Number of keys held (both generations; a key in both counts twice). */
  get size(): number {
    return this.current.hashes.size + (this.previous?.hashes.size ?? 0);
  }

  /**
   * Whether a call with this key may exist. False means certainly not among the calls of the
   * window (see the class note); true means the caller must read the row. One change poll (free
   * inside a {@link ChangeWatch.hold}), then one or two Set lookups.
   */
  mayExist(group: string, requestId: string): boolean {
    const stamp = this.watch.poll();
    if (stamp === IN_TRANSACTION) return true;
    if (stamp !== this.stamp) this.catchUp(stamp);
    const h = keyHash(group, requestId);
    return this.current.hashes.has(h) || (this.previous !== null && this.previous.hashes.has(h));
  }

  /** The newest keys, newest first, down to the window or the cap. */
  private load(db: Db, now: number): void {
    const newest = db.sqlite.prepare(
      'SELECT rowid, "group", request_id AS requestId, created_at AS createdAt FROM ext_calls ORDER BY rowid DESC',
    ) as Statement<[], KeyRow>;
    const hashes = this.current.hashes;
    let since = now;
    for (const row of newest.iterate()) {
      if (this.rowid === 0) this.rowid = row.rowid;
      if (row.createdAt < now - RECENT_KEYS_WINDOW_MS || hashes.size >= RECENT_KEYS_PER_GENERATION) break;
      hashes.add(keyHash(row.group, row.requestId));
      if (row.createdAt < since) since = row.createdAt;
    }
    this.current.since = since;
  }

  /** Folds in the rows added since the last catch-up. */
  private catchUp(stamp: number): void {
    const now = this.clock.now();
    for (const row of this.sinceStmt.iterate(this.rowid)) {
      this.rowid = row.rowid;
      this.add(keyHash(row.group, row.requestId), now);
    }
    this.stamp = stamp;
  }

  private add(hash: number, now: number): void {
    if (now - this.current.since >= RECENT_KEYS_WINDOW_MS || this.current.hashes.size >= RECENT_KEYS_PER_GENERATION) {
      this.previous = this.current;
      this.current = { hashes: new Set(), since: now };
    }
    this.current.hashes.add(hash);
  }
}

/** FNV-1a (32 bits) of `group`, a newline and `requestId`, as a signed 32-bit integer (a V8 small integer). */
function keyHash(group: string, requestId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < group.length; i++) h = Math.imul(h ^ group.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 10, 0x01000193);
  for (let i = 0; i < requestId.length; i++) h = Math.imul(h ^ requestId.charCodeAt(i), 0x01000193);
  return h | 0;
}
