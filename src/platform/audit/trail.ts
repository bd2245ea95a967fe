import type { Db } from '../db/open.js';
import { ApiError } from '../http/problem.js';
import { canonicalDetail, GENESIS_HASH, storedActivityHash, type Activity } from './chain.js';
import { redact } from './redact.js';

export type { Activity } from './chain.js';

/**
 * What a caller records; `detail` is redacted, then stored as its RFC 8785 canonical JSON text,
 * the exact bytes the chain hash covers.
 */
export interface ActivityInput {
  actor: string;
  kind: string;
  subject: string;
  detail?: Record<string, unknown>;
}


// Raw prepared statements, prepared once per connection: the append runs inside every audited
// transaction (the call path's claim and outcome included), so it skips the query builder.
interface Statements {
  head: { get(): { seq: number; hash: string } | undefined };
  insert: { run(...args: unknown[]): unknown };
}
const statements = new WeakMap<Db['sqlite'], Statements>();

function stmts(db: Db): Statements {
  let s = statements.get(db.sqlite);
  if (!s) {
    s = {
      head: db.sqlite.prepare('SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1') as Statements['head'],
      insert: db.sqlite.prepare(
        'INSERT INTO gov_activities (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
    };
    statements.set(db.sqlite, s);
  }
  return s;
}

/**
 * Appends rows to the audit trail. Must run inside the transaction of the state change it records
 * (see `immediate()`), so the change and its audit rows commit together or not at all.
 * Each row's `detail` is stored as its RFC 8785 canonical text and hashed as stored
 * (`storedActivityHash`), so `broker audit verify` can require the stored bytes to be canonical.
 * @param nowMs the clock, Unix ms.
 * @returns the stored rows, in order.
 * @throws ApiError `audit_unavailable` (503) when the write fails; the caller's transaction then
 *   rolls back (fail-closed). Error when called outside a transaction (a programming error).
 */
export function appendActivities(db: Db, inputs: ActivityInput[], nowMs: number): Activity[] {
  // Outside a transaction, the head read and the insert would be two: racing another process's
  // append (SQLITE_BUSY on the upgrade) or splitting the change from its audit row.
  if (!db.sqlite.inTransaction) throw new Error('appendActivities must run inside the transaction of its change (immediate())');
  try {
    const s = stmts(db);
    const head = s.head.get();
    let seq = head?.seq ?? 0;
    let prevHash = head?.hash ?? GENESIS_HASH;
    const ts = new Date(nowMs).toISOString();
    return inputs.map((input) => {
      seq += 1;
      const row = { seq, ts, actor: input.actor, kind: input.kind, subject: input.subject, detail: redact(input.detail ?? {}) };
      // The text stored is the text hashed: a reader of the row (json_extract, an export) sees what the chain covers.
      const detailText = canonicalDetail(row.detail);
      const hash = storedActivityHash(prevHash, { ...row, detail: detailText });
      s.insert.run(seq, ts, row.actor, row.kind, row.subject, detailText, prevHash, hash);
      const stored: Activity = { ...row, prevHash, hash };
      prevHash = hash;
      return stored;
    });
  } catch (err) {
    throw new ApiError('audit_unavailable', 'The audit trail could not be written, so nothing was changed.', {
      cause: err instanceof Error ? err.message : String(err),
    });
  }
}

/** Appends one row; see {@link appendActivities}. */
export function appendActivity(db: Db, input: ActivityInput, nowMs: number): Activity {
  return appendActivities(db, [input], nowMs)[0]!;
}

/** Reads audit rows for a subject (oldest first), at most `limit`. */
export function activitiesFor(db: Db, subject: string, limit = 1000): Activity[] {
  const rows = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE subject = ? ORDER BY seq LIMIT ?')
    .all(subject, limit) as (Omit<Activity, 'detail'> & { detail: string })[];
  return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
}
