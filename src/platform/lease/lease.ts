/**
 * Instance leases (`broker_instances`, see `schema.ts`): which broker processes serve a database
 * right now. A serving process holds a lease it renews every third of `BROKER_LEASE_TTL_MS`;
 * a lease not renewed for the whole TTL means the process died. Crash recovery touches only the
 * calls of expired leases (`src/modules/calls/recovery.ts`), so a process never takes over calls that a
 * live one is running.
 *
 * An engine that cannot share one database between serving processes (SQLite: the inflight set
 * and backpressure counts live in one process's memory) is single-server (`Db.singleServer`): a
 * second `broker serve` finds the live lease and stops before it changes anything. An engine that
 * runs replicas would let each hold its own lease.
 */
import fs from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import { immediate, type Db } from '../db/open.js';

/** One `broker_instances` row. Times are Unix ms. */
export interface InstanceRow {
  id: string;
  pid: number;
  host: string;
  url: string | null;
  startedAt: number;
  leaseUntil: number;
}

const COLUMNS = 'id, pid, host, url, started_at AS startedAt, lease_until AS leaseUntil';

/**
 * Thrown when a database is already served by a live instance and the engine is single-server.
 * The message names the instance (id, pid, host, start, URL), says until when its lease runs
 * and what to do; nothing was written.
 */
export class AlreadyServedError extends Error {
  override name = 'AlreadyServedError';
  constructor(
    readonly dbPath: string,
    readonly holder: InstanceRow,
  ) {
    const since = new Date(holder.startedAt).toISOString();
    const until = new Date(holder.leaseUntil).toISOString();
    super(
      `${dbPath} is already served by broker instance ${holder.id} (pid ${holder.pid} on ${holder.host}, since ${since}, ${holder.url ? `at ${holder.url}` : 'not listening yet'}). ` +
        `One database has one broker: use that one, stop it first (Ctrl-C or SIGTERM), or give this one its own BROKER_DATA_DIR. ` +
        `If that process was killed on another host, its lease ends at ${until}; start again after that. Nothing was changed.`,
    );
  }
}

/**
 * The live leases other than `exceptId` (lease_until > `now`), oldest first.
 * @param now Unix ms.
 */
export function liveInstances(db: Db, now: number, exceptId: string | null = null): InstanceRow[] {
  const rows = db.sqlite
    .prepare(`SELECT ${COLUMNS} FROM broker_instances WHERE lease_until > ? AND id IS NOT ? ORDER BY started_at, id`)
    .all(now, exceptId) as InstanceRow[];
  return rows.filter(mayBeAlive);
}

/**
 * False only when the lease's process is certainly gone: it ran on this host (same host name, so
 * the same PID namespace in a container) and no process has its pid (`kill(pid, 0)` answers
 * ESRCH). A broker killed with SIGKILL can then be restarted at once instead of after its lease
 * runs out. A reused pid keeps the lease alive until its TTL, which errs on the safe side.
 */
export function mayBeAlive(row: Pick<InstanceRow, 'host' | 'pid'>): boolean {
  if (row.host !== os.hostname() || row.pid === process.pid) return true;
  try {
    process.kill(row.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** What a serving process registers: its id and for how long each renewal keeps it alive (ms). */
export interface LeaseHolder {
  id: string;
  ttlMs: number;
}

/**
 * Takes a lease for `me` (inserts or refreshes its row) in one `BEGIN IMMEDIATE` transaction, so
 * two processes starting at once cannot both see the database unserved.
 * @param now Unix ms.
 * @throws AlreadyServedError when the engine is single-server (`db.singleServer`) and another
 *   instance holds a live lease; nothing is written then.
 */
export function acquireLease(db: Db, me: LeaseHolder, now: number): InstanceRow {
  return immediate(db, () => {
    const live = liveInstances(db, now, me.id);
    if (db.singleServer && live.length > 0) throw new AlreadyServedError(db.path, live[0]!);
    // Leases of processes certainly gone (see mayBeAlive) end now, so recovery takes over their calls at once.
    const unexpired = db.sqlite.prepare(`SELECT ${COLUMNS} FROM broker_instances WHERE lease_until > ? AND id <> ?`).all(now, me.id) as InstanceRow[];
    const end = db.sqlite.prepare('UPDATE broker_instances SET lease_until = ? WHERE id = ?');
    for (const gone of unexpired.filter((r) => !mayBeAlive(r))) end.run(now, gone.id);
    const row: InstanceRow = { id: me.id, pid: process.pid, host: os.hostname(), url: null, startedAt: now, leaseUntil: now + me.ttlMs };
    db.sqlite
      .prepare(
        `INSERT INTO broker_instances (id, pid, host, url, started_at, lease_until) VALUES (@id, @pid, @host, @url, @startedAt, @leaseUntil)
         ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until`,
      )
      .run(row);
    return row;
  });
}

/**
 * Extends `me`'s lease to `now + ttlMs`.
 * @returns false when its row is gone: the lease expired and another process's recovery took
 *   over its calls (the process was stalled longer than the TTL).
 * @throws the SQLite error when the write fails (the lease then runs out unless a later renewal succeeds).
 */
export function renewLease(db: Db, me: LeaseHolder, now: number): boolean {
  return db.sqlite.prepare('UPDATE broker_instances SET lease_until = ? WHERE id = ?').run(now + me.ttlMs, me.id).changes === 1;
}

/** Records the origin the instance listens on, for the message a second `serve` prints. */
export function setLeaseUrl(db: Db, id: string, url: string): void {
  db.sqlite.prepare('UPDATE broker_instances SET url = ? WHERE id = ?').run(url, id);
}

/** Deletes the instance's row (graceful stop): its calls have all ended, nothing is left to recover. */
export function releaseLease(db: Db, id: string): void {
  db.sqlite.prepare('DELETE FROM broker_instances WHERE id = ?').run(id);
}

/**
 * The check `broker serve` makes on a SQLite file before it opens it for writing (before
 * migrations, keys or recovery): reads the live leases without writing anything.
 * @param now Unix ms.
 * @throws AlreadyServedError when a live instance serves `dbPath`. A missing file, or one without
 *   `broker_instances` (never served with leases), is not served.
 */
export function assertSqliteNotServed(dbPath: string, now: number): void {
  if (!fs.existsSync(dbPath)) return;
  let sqlite: Database.Database;
  try {
    sqlite = new Database(dbPath, { fileMustExist: true });
  } catch {
    return; // not openable: createDeps reports why
  }
  try {
    sqlite.pragma('busy_timeout = 5000');
    const table = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'broker_instances'").get();
    if (!table) return;
    const live = (sqlite.prepare(`SELECT ${COLUMNS} FROM broker_instances WHERE lease_until > ? ORDER BY started_at, id`).all(now) as InstanceRow[]).filter(mayBeAlive);
    if (live.length > 0) throw new AlreadyServedError(dbPath, live[0]!);
  } finally {
    sqlite.close();
  }
}
