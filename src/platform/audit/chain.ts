/**
 * Checking the audit trail's hash chain, row by row, wherever the rows come from: the database
 * (`broker audit verify`) or a JSON Lines export (`broker audit verify --file`), so an auditor can
 * check an export on another machine without trusting the broker host. The hash rule is
 * {@link activityHash}: sha256 hex of `prev_hash` followed by the RFC 8785 canonical JSON of
 * `{seq, ts, actor, kind, subject, detail}`; the first row's `prev_hash` is {@link GENESIS_HASH}.
 *
 * The chain covers exactly the bytes stored: `detail` is stored as its RFC 8785 canonical text, and
 * a row whose stored text is not byte-identical to the canonical form of what it parses to (a
 * duplicate key, reordered keys, added whitespace) breaks the chain, although it would hash the
 * same: a reader other than `JSON.parse` (SQLite's `json_extract` takes the first of two equal
 * keys) would see something else than what was hashed.
 */
import { createHash, hash } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { Db } from '../db/open.js';

/**
 * One audit row. `ts` is RFC 3339 UTC with ms; `detail` is the parsed JSON object (stored as its
 * RFC 8785 canonical text; see {@link StoredActivity} for the row as stored). The trail
 * (`trail.ts`) writes and reads them; this file defines them with the hash that chains them.
 */
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

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** A row as stored: `detail` is the JSON text held in the database (or spliced into an export line), unparsed. */
export type StoredActivity = Omit<Activity, 'detail'> & { detail: string };

/**
 * The RFC 8785 canonical JSON text of a row's `detail`, as {@link appendActivities} stores it.
 * @throws Error (from `canonicalize`, see `canonical.ts`) on values JSON cannot hold canonically: NaN, Infinity, a
 *   lone UTF-16 surrogate, a cycle.
 */
export function canonicalDetail(detail: Record<string, unknown>): string {
  return canonicalJson(detail) ?? '{}';
}

/**
 * The chain hash of one row: sha256 hex of `prevHash` followed by the RFC 8785 canonical JSON of
 * `{seq, ts, actor, kind, subject, detail}`.
 * @throws Error from {@link canonicalDetail} on a detail JSON cannot hold canonically.
 */
export function activityHash(prevHash: string, row: Omit<Activity, 'prevHash' | 'hash'>): string {
  return storedActivityHash(prevHash, { ...row, detail: canonicalDetail(row.detail) });
}

/**
 * {@link activityHash} over a row as stored: the canonical JSON of the row is written out with the
 * stored `detail` text spliced in verbatim, so the hash covers exactly the stored bytes. When the
 * text is canonical (as {@link ChainChecker} requires), this equals {@link activityHash} of the
 * parsed row.
 * @throws Error (from `canonicalize`) when `actor`, `kind`, `subject` or `ts` holds a lone surrogate.
 */
export function storedActivityHash(prevHash: string, row: Omit<StoredActivity, 'prevHash' | 'hash'>): string {
  // RFC 8785 §3.2.3: members sorted by their UTF-16 code units: actor, detail, kind, seq, subject, ts.
  const body = `{"actor":${canonicalJson(row.actor)},"detail":${row.detail},"kind":${canonicalJson(row.kind)},"seq":${canonicalJson(row.seq)},"subject":${canonicalJson(row.subject)},"ts":${canonicalJson(row.ts)}}`;
  return sha256hex(prevHash + body);
}

/**
 * sha256 hex of a string's UTF-8 bytes: one-shot `crypto.hash` where Node has it (20.12+, no Hash
 * object per call), `createHash` otherwise. Hashing `a + b` equals hashing `a` then `b`.
 */
const sha256hex: (text: string) => string =
  typeof hash === 'function' ? (text) => hash('sha256', text, 'hex') : (text) => createHash('sha256').update(text).digest('hex');

/**
 * Why a stored `detail` text cannot be hashed as it stands, or null when it is the RFC 8785
 * canonical text of the JSON object it parses to (byte for byte).
 */
export function detailProblem(text: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'detail is not JSON';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'detail is not a JSON object';
  let canonical: string;
  try {
    canonical = canonicalDetail(parsed as Record<string, unknown>);
  } catch (err) {
    return `detail has no canonical form: ${(err as Error).message}`;
  }
  if (canonical !== text) {
    return 'detail is not stored in its canonical form (RFC 8785): the stored text differs from the text that is hashed (a duplicate or reordered key, or whitespace)';
  }
  return null;
}

/** A position in the chain: a row's seq and its hash. */
export interface ChainPoint {
  seq: number;
  hash: string;
}

/** A chain position signed earlier (a checkpoint): `ts` is when it was signed, RFC 3339. */
export interface SignedPoint extends ChainPoint {
  ts: string;
}

/**
 * Checks rows in seq order, one {@link ChainChecker.push} at a time (constant memory besides the
 * checkpoints). A row breaks the chain when its seq is not the next one, its `prev_hash` is not the
 * previous row's hash, its stored `detail` is not canonical ({@link detailProblem}), or its hash does
 * not match its contents. The first row may start anywhere (an export with `--since`): its
 * `prev_hash` is then taken as given and reported as {@link start}, to be compared with a head
 * recorded earlier; a chain starting at seq 1 must start from the genesis hash.
 */
export class ChainChecker {
  private prev: ChainPoint | null = null;
  private first: { seq: number; prevHash: string } | null = null;
  private anchorSeen = false;
  /** The first row pushed, whether or not it extended the chain. */
  private seen: { seq: number; prevHash: string } | null = null;
  private readonly checkpointsAt = new Map<number, SignedPoint[]>();
  /** Rows checked so far. */
  rows = 0;

  /**
   * @param anchor a (seq, hash) recorded earlier off the host (`broker audit head`): the row with
   *   that seq must carry that hash, and {@link finish} fails when no row had that seq.
   * @param checkpoints signed checkpoints whose signatures were already checked: the row at each
   *   one's seq must carry its hash, and {@link finish} fails when one lies beyond the last row
   *   (rows were removed from the end). Those before the first row pushed are not checked.
   */
  constructor(
    private readonly anchor?: ChainPoint,
    private readonly checkpoints: readonly SignedPoint[] = [],
  ) {
    for (const c of checkpoints) this.checkpointsAt.set(c.seq, [...(this.checkpointsAt.get(c.seq) ?? []), c]);
  }

  /**
   * Checks the next row.
   * @returns null when it extends the chain, else the reason it breaks it.
   */
  push(row: StoredActivity): string | null {
    this.seen ??= { seq: row.seq, prevHash: row.prevHash };
    const expectedPrev = this.prev?.hash ?? (row.seq === 1 ? GENESIS_HASH : row.prevHash);
    if (this.prev && row.seq !== this.prev.seq + 1) return `expected seq ${this.prev.seq + 1}`;
    if (row.prevHash !== expectedPrev) return this.prev ? 'prev_hash does not match the previous row' : 'seq 1 does not start from the genesis hash';
    const badDetail = detailProblem(row.detail);
    if (badDetail) return badDetail;
    let computed: string;
    try {
      computed = storedActivityHash(row.prevHash, row);
    } catch (err) {
      return `the row has no canonical form: ${(err as Error).message}`;
    }
    if (computed !== row.hash) return 'hash does not match the row';
    if (this.anchor?.seq === row.seq) {
      if (this.anchor.hash !== row.hash) return `hash differs from the anchor ${this.anchor.seq}:${this.anchor.hash}`;
      this.anchorSeen = true;
    }
    for (const c of this.checkpointsAt.get(row.seq) ?? []) {
      if (c.hash !== row.hash) return `hash differs from the checkpoint signed at ${c.ts} (${c.seq}:${c.hash}): the rows up to it were rewritten`;
    }
    this.first ??= { seq: row.seq, prevHash: row.prevHash };
    this.prev = { seq: row.seq, hash: row.hash };
    this.rows += 1;
    return null;
  }

  /**
   * After the last row.
   * @returns null when the anchor (if any) was among the rows and no checkpoint lies beyond the
   *   last row, else the seq that is missing (the anchor's, or the first one a checkpoint covers
   *   after the last row) and why.
   */
  finish(): { seq: number; reason: string } | null {
    if (this.anchor && !this.anchorSeen) return { seq: this.anchor.seq, reason: `the rows do not include the anchor's seq ${this.anchor.seq}` };
    const last = this.prev?.seq ?? 0;
    const beyond = this.checkpoints.filter((c) => c.seq > last).sort((a, b) => b.seq - a.seq)[0];
    if (beyond) {
      const reason = `the rows end at seq ${last}, but a checkpoint signed at ${beyond.ts} covers ${beyond.seq} rows: rows ${last + 1}–${beyond.seq} were removed`;
      return { seq: last + 1, reason };
    }
    return null;
  }

  /**
   * Takes in a run of rows that another checker (a worker's) checked on its own, as if they had
   * been pushed here one by one: the rows must follow this checker's last row. The other checker
   * took its first row's `prev_hash` as given, so the seq and `prev_hash` of that row are checked
   * here, first, as {@link push} would; then the run's own verdict stands.
   * @returns null when the run extends the chain, else the seq that breaks it and why (the rows
   *   before it counted in {@link rows}, as {@link push} counts them).
   */
  absorb(run: CheckedRun): { seq: number; reason: string } | null {
    if (run.start === null) return null;
    if (this.prev && run.start.seq !== this.prev.seq + 1) return { seq: run.start.seq, reason: `expected seq ${this.prev.seq + 1}` };
    if (this.prev && run.start.prevHash !== this.prev.hash) return { seq: run.start.seq, reason: 'prev_hash does not match the previous row' };
    if (run.head !== null) {
      this.first ??= run.start;
      this.prev = run.head;
    }
    this.rows += run.rows;
    if (run.anchorSeen) this.anchorSeen = true;
    return run.broken;
  }

  /** The anchor and checkpoints it checks against, for a checker of the same rows elsewhere (a worker). */
  settings(): { anchor: ChainPoint | undefined; checkpoints: readonly SignedPoint[] } {
    return { anchor: this.anchor, checkpoints: this.checkpoints };
  }

  /** What this checker found, for {@link absorb} by another checker; `broken` is what {@link push} or {@link finish} returned. */
  run(broken: { seq: number; reason: string } | null): CheckedRun {
    return { start: this.seen, head: this.prev, rows: this.rows, anchorSeen: this.anchorSeen, broken };
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
 * A run of rows checked by its own {@link ChainChecker} (see {@link ChainChecker.absorb}): its
 * first row (seq and `prev_hash`, whether or not it extended the chain; null for no rows), its last
 * row that extended the chain, how many did (before `broken`), whether the anchor was among them,
 * and the first row that breaks it.
 */
export interface CheckedRun {
  start: { seq: number; prevHash: string } | null;
  head: ChainPoint | null;
  rows: number;
  anchorSeen: boolean;
  broken: { seq: number; reason: string } | null;
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
 * Recomputes the database's whole hash chain from seq 1 over the stored bytes, streaming (constant
 * memory); see {@link ChainChecker} for what breaks it.
 * @param checker pass one to read {@link ChainChecker.head} afterwards, or to check an anchor or
 *   checkpoints.
 */
export function verifyChain(db: Db, checker = new ChainChecker()): ChainVerdict {
  const iter = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities ORDER BY seq')
    .iterate() as IterableIterator<StoredActivity>;
  for (const r of iter) {
    if (checker.rows === 0 && r.seq !== 1) return { ok: false, rows: 0, brokenSeq: r.seq, reason: 'expected seq 1' };
    const broken = checker.push(r);
    if (broken) return { ok: false, rows: checker.rows, brokenSeq: r.seq, reason: broken };
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, brokenSeq: unmet.seq, reason: unmet.reason };
  return { ok: true, rows: checker.rows };
}
