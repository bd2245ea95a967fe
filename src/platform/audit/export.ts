/**
 * The audit trail as JSON Lines, for auditors: `broker audit export` writes contiguous rows in the
 * wire shape of `GET /v1/audit` (one object per line), and `broker audit verify --file` checks such
 * a file's hash chain on any machine, without the database. With `broker audit head`, recorded off
 * the host, or signed checkpoints (`checkpoints.ts`), an auditor can later show that no row up to
 * that point was rewritten or removed.
 *
 * A line is exactly {@link linePrefix} + the stored `detail` text + {@link lineSuffix}: members in
 * the order seq, ts, actor, kind, subject, detail, prev_hash, hash, no whitespace, strings as
 * `JSON.stringify` writes them, and `detail` spliced in as stored (its RFC 8785 canonical text). So
 * the line carries the stored bytes, and `verify --file` requires them to be canonical just as
 * `verify` does in the database. `JSON.stringify` of a `GET /v1/audit` item writes the same line
 * (unless a detail has integer-like keys, which a parsed JavaScript object moves to the front).
 */
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { Db } from '../db/open.js';
import { ChainChecker, type ChainPoint, type SignedPoint, type StoredActivity } from './chain.js';

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest');

/** One exported row: `{seq, ts, actor, kind, subject, detail, prev_hash, hash}`, as `GET /v1/audit` sends it. */
export const AuditLine = z.strictObject({
  seq: z.number().int().min(1),
  ts: z.string(),
  actor: z.string(),
  kind: z.string(),
  subject: z.string(),
  detail: z.record(z.string(), z.unknown()),
  prev_hash: Hex64,
  hash: Hex64,
});

/** One exported row (see {@link AuditLine}). */
export type AuditLine = z.infer<typeof AuditLine>;

/**
 * Streams the rows after `since` (exclusive) in seq order, as JSON lines (each ending in `\n`).
 * Unfiltered, so the lines form one contiguous stretch of the chain that `verifyExport` can check.
 * @param since a seq (0: from the first row).
 */
export function* exportLines(db: Db, since = 0): Generator<string> {
  const rows = db.sqlite
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE seq > ? ORDER BY seq')
    .iterate(since) as IterableIterator<StoredActivity>;
  // detail is stored as JSON text; splice it in as is rather than parse and re-serialize it.
  for (const r of rows) yield exportLine(r);
}

/** One stored row as its export line (ending in `\n`); `detail` is spliced in as stored. */
export function exportLine(r: StoredActivity): string {
  return `${linePrefix(r)}${r.detail}${lineSuffix(r)}\n`;
}

/** An export line up to its `detail` value: `{"seq":…,"ts":…,"actor":…,"kind":…,"subject":…,"detail":`. */
function linePrefix(r: Omit<StoredActivity, 'detail'>): string {
  return `{"seq":${r.seq},"ts":${JSON.stringify(r.ts)},"actor":${JSON.stringify(r.actor)},"kind":${JSON.stringify(r.kind)},"subject":${JSON.stringify(r.subject)},"detail":`;
}

/** An export line after its `detail` value: `,"prev_hash":"…","hash":"…"}`. */
function lineSuffix(r: Omit<StoredActivity, 'detail'>): string {
  return `,"prev_hash":${JSON.stringify(r.prevHash)},"hash":${JSON.stringify(r.hash)}}`;
}

/** The newest row's seq and hash (what to record off the host as an anchor), or null for an empty trail. */
export function chainHead(db: Db): (ChainPoint & { ts: string }) | null {
  return (db.sqlite.prepare('SELECT seq, hash, ts FROM gov_activities ORDER BY seq DESC LIMIT 1').get() as (ChainPoint & { ts: string }) | undefined) ?? null;
}

/** What {@link verifyExport} found: the stretch checked, or the first line that breaks it. */
export type ExportVerdict =
  | { ok: true; rows: number; start: { seq: number; prevHash: string } | null; head: ChainPoint | null }
  | { ok: false; rows: number; line: number; seq: number | null; reason: string };

/**
 * Checks a JSON Lines export line by line (constant memory besides the checkpoints): each line must
 * be an {@link AuditLine} written exactly as {@link exportLines} writes it (so its `detail` text is
 * the stored text, which must be canonical), and the rows must form a valid stretch of the chain
 * (see `ChainChecker`). Blank lines are skipped. Never throws on the file's contents.
 * @param anchor a (seq, hash) recorded earlier: the file must contain that row with that hash.
 * @param checkpoints signed checkpoints (signatures already checked): each one within the file's
 *   stretch must match its row, and none may lie beyond the file's last row.
 * @throws the fs error when the file cannot be read.
 */
export async function verifyExport(file: string, anchor?: ChainPoint, checkpoints: readonly SignedPoint[] = []): Promise<ExportVerdict> {
  const checker = new ChainChecker(anchor, checkpoints);
  const lines = createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n += 1;
    if (text.trim() === '') continue;
    const row = parseLine(text);
    if (typeof row === 'string') return { ok: false, rows: checker.rows, line: n, seq: null, reason: row };
    const broken = row.form ?? checker.push(row.row);
    if (broken) return { ok: false, rows: checker.rows, line: n, seq: row.row.seq, reason: broken };
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, line: n, seq: null, reason: unmet.reason };
  return { ok: true, rows: checker.rows, start: checker.start, head: checker.head };
}

/**
 * One line as a row with its `detail` as the text in the line, or why it is not a row at all.
 * `form` says why a row's line is not written as {@link exportLines} writes it (null when it is).
 */
function parseLine(text: string): { row: StoredActivity; form: string | null } | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const parsed = AuditLine.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `not an audit row: ${issue.path.join('.') || '(line)'}: ${issue.message}`;
  }
  const { prev_hash: prevHash, detail: _parsed, ...rest } = parsed.data;
  const fields = { ...rest, prevHash };
  const prefix = linePrefix(fields);
  const suffix = lineSuffix(fields);
  if (text.length < prefix.length + suffix.length || !text.startsWith(prefix) || !text.endsWith(suffix)) {
    const form = 'the line is not written as `broker audit export` writes it (members in the order seq, ts, actor, kind, subject, detail, prev_hash, hash, each once, without whitespace)';
    return { row: { ...fields, detail: '' }, form };
  }
  return { row: { ...fields, detail: text.slice(prefix.length, text.length - suffix.length) }, form: null };
}
