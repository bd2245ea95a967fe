/**
 * The audit trail as JSON Lines, for auditors: `broker audit export` writes contiguous rows in the
 * wire shape of `GET /v1/audit` (one object per line), and `broker audit verify --file` checks such
 * a file's hash chain on any machine, without the database. With `broker audit head`, recorded off
 * the host, an auditor can later show that no row up to that point was rewritten or removed.
 */
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { Db } from '../db/open.js';
import { ChainChecker, type ChainPoint } from './chain.js';
import type { Activity } from './trail.js';

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
    .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash, hash FROM gov_activities WHERE seq > ? ORDER BY seq')
    .iterate(since) as IterableIterator<Omit<AuditLine, 'detail'> & { detail: string }>;
  for (const r of rows) {
    // detail is stored as JSON text; splice it in as is rather than parse and re-serialize it.
    yield `{"seq":${r.seq},"ts":${JSON.stringify(r.ts)},"actor":${JSON.stringify(r.actor)},"kind":${JSON.stringify(r.kind)},"subject":${JSON.stringify(r.subject)},"detail":${r.detail},"prev_hash":"${r.prev_hash}","hash":"${r.hash}"}\n`;
  }
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
 * Checks a JSON Lines export line by line (constant memory): each line must be an
 * {@link AuditLine}, and the rows must form a valid stretch of the chain (see `ChainChecker`).
 * Blank lines are skipped. Never throws on the file's contents.
 * @param anchor a (seq, hash) recorded earlier: the file must contain that row with that hash.
 * @throws the fs error when the file cannot be read.
 */
export async function verifyExport(file: string, anchor?: ChainPoint): Promise<ExportVerdict> {
  const checker = new ChainChecker(anchor);
  const lines = createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n += 1;
    if (text.trim() === '') continue;
    const row = parseLine(text);
    if (typeof row === 'string') return { ok: false, rows: checker.rows, line: n, seq: null, reason: row };
    const broken = checker.push(row);
    if (broken) return { ok: false, rows: checker.rows, line: n, seq: row.seq, reason: broken };
  }
  const unmet = checker.finish();
  if (unmet) return { ok: false, rows: checker.rows, line: n, seq: null, reason: unmet };
  return { ok: true, rows: checker.rows, start: checker.start, head: checker.head };
}

/** One line as a row, or why it is not one. */
function parseLine(text: string): Activity | string {
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
  const { prev_hash: prevHash, ...rest } = parsed.data;
  return { ...rest, prevHash };
}
