/**
 * The audit trail on PostgreSQL: the same rows, canonical detail text and hash chain as the SQLite
 * trail (`trail.ts`, `chain.ts`), appended by several replicas at once. Appends are serialised by
 * the transaction-level advisory lock `(PG_LOCK_CLASS, PG_LOCKS.auditAppend)`, taken in the
 * transaction of the change being recorded and held until it commits or rolls back: the next
 * appender, on any replica, reads the head only after that, so the chain never forks and never
 * has a gap (a rolled-back append leaves no row and its seq is reused). The baseline migration's
 * triggers refuse UPDATE, DELETE, TRUNCATE and any row that does not link to the one before it.
 */
import { sql } from 'drizzle-orm';
import { PgTransaction } from 'drizzle-orm/pg-core';
import { PG_LOCK_CLASS, PG_LOCKS, pgErrorText, type PgDb, type PgTx } from '../db/pg.js';
import { ApiError } from '../http/problem.js';
import { canonicalDetail, ChainChecker, GENESIS_HASH, storedActivityHash, type ChainVerdict, type StoredActivity } from './chain.js';
import { redact } from './redact.js';
import { govActivities } from './schema.pg.js';
import type { Activity, ActivityInput } from './trail.js';

/**
 * Appends rows to the audit trail inside `tx`, the transaction of the state change they record,
 * so the change and its rows commit together or not at all. Takes the audit advisory lock first
 * (it waits for another replica's append to commit), then reads the head in a statement of its own
 * (a READ COMMITTED statement sees what committed before it began, so the head read after the wait
 * is current), then inserts the rows with one statement. Each row's `detail` is redacted and
 * stored as its RFC 8785 canonical text and hashed as stored (`storedActivityHash`), exactly as
 * `appendActivities` does, so `broker audit verify` and the checkpoints work unchanged.
 * @param nowMs the clock, Unix ms (every row gets `ts` = its RFC 3339 form).
 * @returns the stored rows, in order.
 * @throws ApiError `audit_unavailable` (503) when the lock, the head read or the insert fails; the
 *   caller's transaction must then roll back (fail-closed). Error when `tx` is not a transaction,
 *   or runs at REPEATABLE READ or SERIALIZABLE (its snapshot could predate the lock, so the head
 *   read would be stale): programming errors.
 */
export async function appendActivitiesPg(tx: PgTx, inputs: ActivityInput[], nowMs: number): Promise<Activity[]> {
  // On the pool itself, the advisory lock would last one statement, and the head read and the
  // insert would race other appenders.
  if (!(tx instanceof PgTransaction)) throw new Error('appendActivitiesPg must run inside the transaction of its change (orm.transaction())');
  if (inputs.length === 0) return [];
  let isolation: string;
  try {
    // One round trip: the lock, and the isolation level (a setting, not data, so no snapshot is involved).
    const locked = await tx.execute<{ isolation: string }>(
      sql`SELECT pg_advisory_xact_lock(${PG_LOCK_CLASS}, ${PG_LOCKS.auditAppend}), current_setting('transaction_isolation') AS isolation`,
    );
    isolation = locked.rows[0]?.isolation ?? '';
  } catch (err) {
    throw auditUnavailable(err);
  }
  if (isolation !== 'read committed') {
    throw new Error(`appendActivitiesPg needs a READ COMMITTED transaction (this one is ${isolation}): its snapshot could predate the audit lock`);
  }
  try {
    const head = await tx.execute<{ seq: string | number; hash: string }>(sql`SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1`);
    let seq = head.rows[0] === undefined ? 0 : Number(head.rows[0].seq);
    let prevHash = head.rows[0]?.hash ?? GENESIS_HASH;
    const ts = new Date(nowMs).toISOString();
    const stored: Activity[] = [];
    const rows: (typeof govActivities.$inferInsert)[] = [];
    for (const input of inputs) {
      seq += 1;
      const row = { seq, ts, actor: input.actor, kind: input.kind, subject: input.subject, detail: redact(input.detail ?? {}) };
      // The text stored is the text hashed: a reader of the row (an export, a SQL query) sees what the chain covers.
      const detailText = canonicalDetail(row.detail);
      const hash = storedActivityHash(prevHash, { ...row, detail: detailText });
      rows.push({ ...row, detail: detailText, prevHash, hash });
      stored.push({ ...row, prevHash, hash });
      prevHash = hash;
    }
    await tx.insert(govActivities).values(rows);
    return stored;
  } catch (err) {
    throw auditUnavailable(err);
  }
}

/** Appends one row; see {@link appendActivitiesPg}. */
export async function appendActivityPg(tx: PgTx, input: ActivityInput, nowMs: number): Promise<Activity> {
  return (await appendActivitiesPg(tx, [input], nowMs))[0]!;
}

function auditUnavailable(err: unknown): ApiError {
  // The driver's message, not drizzle's wrapper (which lists the rows' values).
  return new ApiError('audit_unavailable', 'The audit trail could not be written, so nothing was changed.', { cause: pgErrorText(err) });
}

/**
 * The stored audit rows with `seq > afterSeq` (default 0: all), in seq order, as stored (`detail`
 * unparsed), read in pages of `pageRows` (default 1000) by primary key: constant memory, and no
 * cursor or transaction held open between pages.
 * @throws the driver's error when a page cannot be read.
 */
export async function* storedActivitiesPg(db: PgDb, opts: { afterSeq?: number; pageRows?: number } = {}): AsyncGenerator<StoredActivity> {
  const pageRows = opts.pageRows ?? 1000;
  let after = opts.afterSeq ?? 0;
  for (;;) {
    const page = await db.pool.query<Omit<StoredActivity, 'seq'> & { seq: string }>(
      'SELECT seq, ts, actor, kind, subject, detail, prev_hash AS "prevHash", hash FROM gov_activities WHERE seq > $1 ORDER BY seq LIMIT $2',
      [after, pageRows],
    );
    for (const r of page.rows) yield { ...r, seq: Number(r.seq) };
    if (page.rows.length < pageRows) return;
    after = Number(page.rows[page.rows.length - 1]!.seq);
  }
}

/**
 * Recomputes the PostgreSQL database's whole hash chain from seq 1 over the stored bytes, with the
 * same {@link ChainChecker} as `verifyChain` on SQLite.
 * @param checker pass one to read its head afterwards, or to check an anchor or checkpoints.
 * @throws the driver's error when the rows cannot be read.
 */
export async function verifyChainPg(db: PgDb, checker = new ChainChecker()): Promise<ChainVerdict> {
  for await (const r of storedActivitiesPg(db)) {
    if (checker.rows === 0 && r.seq !== 1) return { ok: false, rows: 0, brokenSeq: r.seq, reason: 'expected seq 1' };
    const broken = checker.push(r);
    if (broken) return { ok: false, rows: checker.rows, brokenSeq: r.seq, reason: broken };
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, brokenSeq: unmet.seq, reason: unmet.reason };
  return { ok: true, rows: checker.rows };
}
