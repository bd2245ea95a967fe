/**
 * Cursor pagination, one style for every list operation (as Stripe's and GitHub's APIs page):
 * the query takes `limit` and an opaque `cursor`; the answer is `{data, has_more, next_cursor}`,
 * and the next page is asked for with `cursor=<next_cursor>` and the same filters.
 *
 * What a cursor holds is the list's business, and clients never look inside:
 * - a list ordered by a unique, sortable id (tasks, dispatches, grants, token revocations) uses
 *   the last row's id as it is, so the `next_cursor` values earlier clients passed back as
 *   `starting_after` keep working, and its `cursor` is validated as such an id;
 * - any other position (an audit `seq`, a call's creation time) is encoded by
 *   {@link encodeCursor}: the base64url of the position prefixed with a version.
 * A cursor a list did not give is refused: 422 `validation_failed` at `cursor`.
 */
import { z } from 'zod';
import { ApiError } from './problem.js';

const CURSOR_PREFIX = 'c1:';

/** Encodes a position (the last row's sort key) as an opaque cursor. */
export function encodeCursor(position: string | number): string {
  return Buffer.from(`${CURSOR_PREFIX}${typeof position === 'number' ? `n${position}` : `s${position}`}`).toString('base64url');
}

/**
 * The error for a cursor this API did not give.
 * @returns ApiError 422 `validation_failed` with one issue at `cursor`.
 */
export function invalidCursor(): ApiError {
  const message = "not a cursor this API gave; pass the previous page's next_cursor";
  return new ApiError('validation_failed', `The request query is invalid: cursor: ${message}.`, { issues: [{ path: ['cursor'], code: 'invalid_value', message }] });
}

/**
 * Decodes a cursor made by {@link encodeCursor}.
 * @throws ApiError 422 `validation_failed` (at `cursor`) when it was not made here.
 */
export function decodeCursor(cursor: string): string | number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (text.startsWith(`${CURSOR_PREFIX}n`)) {
    const n = Number(text.slice(CURSOR_PREFIX.length + 1));
    if (/^\d+$/.test(text.slice(CURSOR_PREFIX.length + 1)) && Number.isSafeInteger(n)) return n;
  } else if (text.startsWith(`${CURSOR_PREFIX}s`) && text.length > CURSOR_PREFIX.length + 1) {
    return text.slice(CURSOR_PREFIX.length + 1);
  }
  throw invalidCursor();
}

/** The opaque `cursor` query parameter of lists whose cursors {@link encodeCursor} makes. */
export const Cursor = z.string().min(1).max(512).describe("The previous page's `next_cursor`.");

/**
 * The paging members of a list operation's query: `limit` (1 to `max`, default `byDefault`) and
 * `cursor`. Spread into the operation's query schema.
 * @param cursor the cursor's schema: {@link Cursor}, or the row id's schema for lists whose
 *   cursor is the last row's id (a value of another shape is then 422 `validation_failed`).
 */
export function pageQuery<C extends z.ZodType<string, string>>(max: number, byDefault: number, cursor?: C) {
  return {
    limit: z.coerce.number().int().min(1).max(max).default(byDefault).describe(`Rows per page, 1–${max}.`),
    cursor: (cursor ?? Cursor).optional().describe("The previous page's `next_cursor`; absent for the first page.") as z.ZodOptional<C>,
  };
}

/**
 * Marks a query member as a deprecated alias an earlier client may still send (`starting_after`,
 * `since`, `before`): deprecated both as a parameter and as a schema in the OpenAPI document.
 */
export function deprecatedAlias<S extends z.ZodType>(schema: S, description: string): S {
  return schema.meta({ deprecated: true, description: `Deprecated: ${description}`, param: { deprecated: true } } as Record<string, unknown>) as S;
}

/**
 * The position a request pages from: its `cursor`, else the deprecated alias an earlier client
 * may still send (`starting_after`, `since`, `before`).
 * @throws ApiError 422 `validation_failed` when both are given.
 */
export function pagePosition<C, A>(cursor: C | undefined, alias: string, aliasValue: A | undefined): C | A | undefined {
  if (cursor !== undefined && aliasValue !== undefined) {
    const message = `give cursor or ${alias}, not both (${alias} is deprecated)`;
    throw new ApiError('validation_failed', `The request query is invalid: cursor: ${message}.`, { issues: [{ path: ['cursor'], code: 'custom', message }] });
  }
  return cursor ?? aliasValue;
}

/** A page as every list operation answers it. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** The answer schema of a list operation whose rows are `item`. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.strictObject({
    data: z.array(item),
    has_more: z.boolean().describe('True when another page follows.'),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
  });
}

/**
 * Builds a page from up to `limit + 1` rows read in order (the extra row only says that more
 * follow).
 * @param cursorOf the cursor of a row (its id, or {@link encodeCursor} of its position), given
 *   as `next_cursor` for the last row kept.
 */
export function toPage<R, T = R>(rows: R[], limit: number, cursorOf: (row: R) => string, render?: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return {
    data: render ? kept.map(render) : (kept as unknown as T[]),
    has_more: more,
    next_cursor: more ? cursorOf(kept[kept.length - 1]!) : null,
  };
}
