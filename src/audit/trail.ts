import { createHash, hash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db } from '../db/open.js';
import { ApiError } from '../http/problem.js';
import { redact } from './redact.js';

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** What a caller records; `detail` is redacted before it is hashed and stored. */
export interface ActivityInput {
  actor: string;
  kind: string;
  subject: string;
  detail?: Record<string, unknown>;
}

/** One stored audit row. `ts` is RFC 3339 UTC with ms; `detail` is the parsed JSON object. */
export interface Activity {
  seq: number;
  ts: string;
  actor: string;
  kind: string;
  subject: string;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/**
 * The chain hash of one row: sha256 hex of `prevHash` followed by the RFC 8785 canonical JSON of
 * `{seq, ts, actor, kind, subject, detail}`.
 */
export function activityHash(prevHash: string, row: Omit<Activity, 'prevHash' | 'hash'>): string {
  const body = canonicalize({ seq: row.seq, ts: row.ts, actor: row.actor, kind: row.kind, subject: row.subject, detail: row.detail });
  return sha256hex(prevHash + (body ?? ''));
}

/**
 * sha256 hex of a string's UTF-8 bytes: one-shot `crypto.hash` where Node has it (20.12+, no Hash
 * object per call), `createHash` otherwise. Hashing `a + b` equals hashing `a` then `b`.
 */
const sha256hex: (text: string) => string =
  typeof hash === 'function' ? (text) => hash('sha256', text, 'hex') : (text) => createHash('sha256').update(text).digest('hex');

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
 * @param nowMs the clock, Unix ms.
 * @returns the stored rows, in order.
 * @throws ApiError `audit_unavailable` (503) when the write fails; the caller's transaction then
 *   rolls back (fail-closed).
 */
export function appendActivities(db: Db, inputs: ActivityInput[], nowMs: number): Activity[] {
  try {
    const s = stmts(db);
    const head = s.head.get();
    let seq = head?.seq ?? 0;
    let prevHash = head?.hash ?? GENESIS_HASH;
    const ts = new Date(nowMs).toISOString();
    return inputs.map((input) => {
      seq += 1;
      const row = { seq, ts, actor: input.actor, kind: input.kind, subject: input.subject, detail: redact(input.detail ?? {}) };
      const hash = activityHash(prevHash, row);
      s.insert.run(seq, ts, row.actor, row.kind, row.subject, JSON.stringify(row.detail), prevHash, hash);
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

/** Result of {@link verifyChain}: every row checked, or the first broken `seq`. */
export type ChainVerdict = { ok: true; rows: number } | { ok: false; rows: number; brokenSeq: number; reason: string };

/**
 * Recomputes the hash chain from the first row, streaming (constant memory).
 * A row breaks the chain when its seq is not the next one, its prev_hash is not the previous
 * row's hash, or its hash does not match its contents.
 */
export function verifyChain(db: Db): ChainVerdict {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let rows = 0;
  const iter = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities ORDER BY seq')
    .iterate() as IterableIterator<Omit<Activity, 'detail'> & { detail: string }>;
  for (const r of iter) {
    const fail = (reason: string): ChainVerdict => ({ ok: false, rows, brokenSeq: r.seq, reason });
    if (r.seq !== expectedSeq) return fail(`expected seq ${expectedSeq}`);
    if (r.prevHash !== prevHash) return fail('prev_hash does not match the previous row');
    let detail: Record<string, unknown>;
    try {
      detail = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      return fail('detail is not JSON');
    }
    if (activityHash(prevHash, { ...r, detail }) !== r.hash) return fail('hash does not match the row');
    prevHash = r.hash;
    expectedSeq += 1;
    rows += 1;
  }
  return { ok: true, rows };
}

/** Reads audit rows for a subject (oldest first), at most `limit`. */
export function activitiesFor(db: Db, subject: string, limit = 1000): Activity[] {
  const rows = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE subject = ? ORDER BY seq LIMIT ?')
    .all(subject, limit) as (Omit<Activity, 'detail'> & { detail: string })[];
  return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
}
