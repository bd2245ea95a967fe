/**
 * Cursor pagination, one style for every list operation (as Stripe's and GitHub's APIs page):
 * the query takes `limit` and an opaque `cursor`; the answer is `{data, has_more, next_cursor}`,
 * and the next page is asked for with `cursor=<next_cursor>` and the same filters. A cursor is
 * the base64url of the last row's position (an id, a seq or a time), prefixed with a version, so
 * clients cannot depend on what is inside it.
 */
import { z } from 'zod';
import { ApiError } from './problem.js';

const CURSOR_PREFIX = 'c1:';

/** Encodes a position (the last row's sort key) as an opaque cursor. */
export function encodeCursor(position: string | number): string {
  return Buffer.from(`${CURSOR_PREFIX}${typeof position === 'number' ? `n${position}` : `s${position}`}`).toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor}.
 * @throws ApiError 422 `validation_failed` (at `cursor`) when it was not made here.
 */
export function decodeCursor(cursor: string): string | number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (text.startsWith(`${CURSOR_PREFIX}n`)) {
    const n = Number(text.slice(CURSOR_PREFIX.length + 1));
    if (Number.isSafeInteger(n) && n >= 0) return n;
  } else if (text.startsWith(`${CURSOR_PREFIX}s`) && text.length > CURSOR_PREFIX.length + 1) {
    return text.slice(CURSOR_PREFIX.length + 1);
  }
  throw new ApiError('validation_failed', 'The request query is invalid: cursor: not a cursor this API gave; pass the previous page\'s next_cursor.', {
    issues: [{ path: ['cursor'], code: 'invalid_value', message: "not a cursor this API gave; pass the previous page's next_cursor" }],
  });
}

/** The opaque `cursor` query parameter. */
export const Cursor = z.string().min(1).max(512).describe("The previous page's `next_cursor`.");

/**
 * The paging members of a list operation's query: `limit` (1 to `max`, default `byDefault`) and
 * `cursor`. Spread into the operation's query schema.
 */
export function pageQuery(max: number, byDefault: number) {
  return {
    limit: z.coerce.number().int().min(1).max(max).default(byDefault).describe(`Rows per page, 1–${max}.`),
    cursor: Cursor.optional(),
  };
}

/** A page as every list operation answers it. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** The answer schema of a list operation whose rows are `item`. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    has_more: z.boolean(),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
  });
}

/**
 * Builds a page from up to `limit + 1` rows read in order (the extra row only says that more
 * follow).
 * @param positionOf the sort key of a row, encoded into `next_cursor`.
 */
export function toPage<R, T = R>(rows: R[], limit: number, positionOf: (row: R) => string | number, render?: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return {
    data: render ? kept.map(render) : (kept as unknown as T[]),
    has_more: more,
    next_cursor: more ? encodeCursor(positionOf(kept[kept.length - 1]!)) : null,
  };
}
