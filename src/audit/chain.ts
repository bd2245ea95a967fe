/**
 * Checking the audit trail's hash chain, row by row, wherever the rows come from: the database
 * (`broker audit verify`) or a JSONL export (`broker audit verify --file`), so an auditor can check
 * an export on another machine without trusting the broker host. The hash rule is
 * {@link activityHash}: sha256 hex of `prev_hash` followed by the RFC 8785 canonical JSON of
 * `{seq, ts, actor, kind, subject, detail}`; the first row's `prev_hash` is {@link GENESIS_HASH}.
 */
import { createHash, hash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db } from '../db/open.js';
import type { Activity } from './trail.js';

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

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

/** A position in the chain: a row's seq and its hash. */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/**
 * Checks rows in seq order, one {@link ChainChecker.push} at a time (constant memory).
 * A row breaks the chain when its seq is not the next one, its `prev_hash` is not the previous
 * row's hash, or its hash does not match its contents. The first row may start anywhere (an export
 * with `--since`): its `prev_hash` is then taken as given and reported as {@link start}, to be
 * compared with a head recorded earlier; a chain starting at seq 1 must start from the genesis hash.
 */
export class ChainChecker {
  private prev: ChainPoint | null = null;
  private first: { seq: number; prevHash: string } | null = null;
  private anchorSeen = false;
  /** Rows checked so far. */
  rows = 0;

  /**
   * @param anchor a (seq, hash) recorded earlier off the host (`broker audit head`): the row with
   *   that seq must carry that hash, and {@link finish} fails when no row had that seq.
   */
  constructor(private readonly anchor?: ChainPoint) {}

  /**
   * Checks the next row.
   * @returns null when it extends the chain, else the reason it breaks it.
   */
  push(row: Activity): string | null {
    const expectedPrev = this.prev?.hash ?? (row.seq === 1 ? GENESIS_HASH : row.prevHash);
    if (this.prev && row.seq !== this.prev.seq + 1) return `expected seq ${this.prev.seq + 1}`;
    if (row.prevHash !== expectedPrev) return this.prev ? 'prev_hash does not match the previous row' : 'seq 1 does not start from the genesis hash';
    if (activityHash(row.prevHash, row) !== row.hash) return 'hash does not match the row';
    if (this.anchor?.seq === row.seq) {
      if (this.anchor.hash !== row.hash) return `hash differs from the anchor ${this.anchor.seq}:${this.anchor.hash}`;
      this.anchorSeen = true;
    }
    this.first ??= { seq: row.seq, prevHash: row.prevHash };
    this.prev = { seq: row.seq, hash: row.hash };
    this.rows += 1;
    return null;
  }

  /**
   * After the last row.
   * @returns null when the anchor (if any) was among the rows, else why not.
   */
  finish(): string | null {
    if (this.anchor && !this.anchorSeen) return `the rows do not include the anchor's seq ${this.anchor.seq}`;
    return null;
  }

  /** Where the checked rows start: the first seq and the `prev_hash` it builds on; null before any row. */
  get start(): { seq: number; prevHash: string } | null {
    return this.first;
  }

  /** The last checked row; null before any row. */
  get head(): ChainPoint | null {
    return this.prev;
  }
}

/**
 * Parses an anchor given as `<seq>:<sha256 hex>` (what `broker audit head` prints as `anchor`).
 * @returns the point, or null when the text is not of that form.
 */
export function parseAnchor(text: string): ChainPoint | null {
  const m = /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/.exec(text);
  return m ? { seq: Number(m[1]), hash: m[2]! } : null;
}

/** Result of {@link verifyChain}: every row checked, or the first broken `seq`. */
export type ChainVerdict = { ok: true; rows: number } | { ok: false; rows: number; brokenSeq: number; reason: string };

/**
 * Recomputes the database's whole hash chain from seq 1, streaming (constant memory); see
 * {@link ChainChecker} for what breaks it.
 * @param checker pass one to read {@link ChainChecker.head} afterwards, or to check an anchor.
 */
export function verifyChain(db: Db, checker = new ChainChecker()): ChainVerdict {
  const iter = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities ORDER BY seq')
    .iterate() as IterableIterator<Omit<Activity, 'detail'> & { detail: string }>;
  for (const r of iter) {
    const fail = (reason: string): ChainVerdict => ({ ok: false, rows: checker.rows, brokenSeq: r.seq, reason });
    if (checker.rows === 0 && r.seq !== 1) return fail('expected seq 1');
    let detail: Record<string, unknown>;
    try {
      detail = JSON.parse(r.detail) as Record<string, unknown>;
    } catch {
      return fail('detail is not JSON');
    }
    const broken = checker.push({ ...r, detail });
    if (broken) return fail(broken);
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, brokenSeq: checker.head?.seq ?? 0, reason: unmet };
  return { ok: true, rows: checker.rows };
}
