/**
 * The page tokens the Cloud Logs actions hand out. A page the result-size cap cut short must resume
 * where it was cut, which Cloud Logging's own token cannot express, so the broker's token is
 * `base64url(JSON {p, s, q})`:
 * - `p`: Cloud Logging's page token for the page being read (`''` for the first page);
 * - `s`: how many items of that page the caller already has;
 * - `q`: a fingerprint of the query, so a token is only accepted for the query that issued it.
 * The token is opaque to callers; forging one can only re-read pages of a query they may run.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApiError } from '../../platform/http/problem.js';

/** Where a page starts. */
export interface Cursor {
  /** Cloud Logging's page token; `''` for the first page. */
  p: string;
  /** Items of that page to skip. */
  s: number;
}

const CursorSchema = z.object({ p: z.string().max(8192), s: z.int().min(0).max(1000), q: z.string() });

/** A short fingerprint of the parts of a query a page token is bound to. */
export function queryFingerprint(...parts: Array<string | number>): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 16);
}

/** Encodes a cursor for the query with fingerprint `q`. */
export function encodeCursor(cursor: Cursor, q: string): string {
  return Buffer.from(JSON.stringify({ p: cursor.p, s: cursor.s, q })).toString('base64url');
}

/**
 * Decodes a caller's `page_token`; no token means the first page.
 * @throws ApiError 422 `validation_failed` when the token is malformed or was issued for another query.
 */
export function decodeCursor(token: string | undefined, q: string): Cursor {
  if (!token) return { p: '', s: 0 };
  let parsed: z.infer<typeof CursorSchema>;
  try {
    parsed = CursorSchema.parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
  } catch {
    throw new ApiError('validation_failed', 'page_token is not a page token this broker issued.', { issues: [{ path: ['page_token'], code: 'custom', message: 'malformed page token' }] });
  }
  if (parsed.q !== q) {
    throw new ApiError('validation_failed', 'page_token was issued for a different query; repeat the same parameters or drop it.', { issues: [{ path: ['page_token'], code: 'custom', message: 'page token of another query' }] });
  }
  return { p: parsed.p, s: parsed.s };
}

/**
 * Takes the items of one fetched page that fit `admit`, starting after the cursor's skip, and says
 * where the next page starts: the rest of this page when the cap cut it, else the service's next
 * page, else null (no more).
 * @param items the page as fetched with `cursor.p`.
 * @param serviceNext Cloud Logging's `nextPageToken` for that page (`''` or null at the end).
 */
export function takePage<T>(
  items: T[],
  cursor: Cursor,
  serviceNext: string | null | undefined,
  admit: (item: T) => boolean,
): { taken: T[]; next: Cursor | null; cut: boolean } {
  const taken: T[] = [];
  for (const item of items.slice(cursor.s)) {
    if (!admit(item)) return { taken, next: { p: cursor.p, s: cursor.s + taken.length }, cut: true };
    taken.push(item);
  }
  return { taken, next: serviceNext ? { p: serviceNext, s: 0 } : null, cut: false };
}
