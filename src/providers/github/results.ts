/**
 * Result shaping for the GitHub actions: trimmed, documented shapes instead of raw GitHub
 * payloads, passed through the audit trail's redaction and capped in size,
 * and the bounded reading of a raw file body (only its front is ever held in memory).
 */
import { redact } from '../../platform/audit/redact.js';

/** Longest issue, pull request or comment body kept in a result, in characters (before the overall cap). */
export const MAX_RESULT_BODY = 16 * 1024;
const MARK = '…[truncated]';

const byteSize = (v: unknown): number => Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');

/**
 * Redacts `value` and shrinks it until its JSON is at most `maxBytes` bytes:
 * first list results (`{items: [...]}`) lose items from the end, then the longest strings are
 * shortened (ending in `…[truncated]`). Whatever was cut, the result gets `truncated: true`.
 * Non-object results are only redacted.
 */
export function capResult<T>(value: T, maxBytes: number): T {
  let out = redact(value) as unknown;
  if (out === null || typeof out !== 'object' || Array.isArray(out) || byteSize(out) <= maxBytes) return out as T;
  const obj: Record<string, unknown> = { ...(out as Record<string, unknown>), truncated: true };
  const items = obj['items'];
  if (Array.isArray(items)) {
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (byteSize({ ...obj, items: items.slice(0, mid) }) <= maxBytes) lo = mid;
      else hi = mid - 1;
    }
    obj['items'] = items.slice(0, lo);
  }
  out = obj;
  for (let round = 0; round < 32 && byteSize(out) > maxBytes; round++) {
    const longest = longestString(out);
    if (!longest || longest.value.length <= MARK.length) break;
    const ratio = maxBytes / byteSize(out);
    const keep = Math.max(0, Math.floor(longest.value.length * Math.min(ratio, 0.5)) - MARK.length);
    out = replaceAt(out, longest.path, longest.value.slice(0, keep) + MARK);
  }
  return out as T;
}

/** The front of a body stream, as read by {@link readPrefix}. */
export interface StreamPrefix {
  /** The stream's bytes: all of them when `complete`, else exactly the first `limit` bytes. */
  bytes: Uint8Array;
  /** True when the stream ended within `limit` bytes; false when it was cut (and cancelled). */
  complete: boolean;
  /** Bytes pulled from the stream before it ended or was cancelled (the last chunk may go past `limit`). */
  bytesRead: number;
}

/**
 * Reads `stream` until it ends or more than `limit` bytes have arrived, then cancels it (for a
 * fetch body, that closes the connection), so at most `limit` bytes plus one chunk are ever held
 * and no chunk is pulled after the one that crosses `limit`. Releases the stream's lock either way.
 * @param limit bytes to keep, at least 0.
 * @throws whatever reading the stream throws (e.g. the abort reason of the request's signal);
 *   a failing cancel is ignored (the bytes kept are complete).
 */
export async function readPrefix(stream: ReadableStream<Uint8Array>, limit: number): Promise<StreamPrefix> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let held = 0;
  let bytesRead = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks, held), complete: true, bytesRead };
      bytesRead += value.byteLength;
      if (held + value.byteLength > limit) {
        chunks.push(value.subarray(0, limit - held));
        await reader.cancel().catch(() => undefined);
        return { bytes: Buffer.concat(chunks, limit), complete: false, bytesRead };
      }
      chunks.push(value);
      held += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Decodes UTF-8 strictly: null when `bytes` are not valid UTF-8 (a binary file). With `cut` (the
 * bytes are the front of something longer), a character left incomplete at the end is dropped
 * rather than taken for invalid: a fatal `TextDecoder` in streaming mode decodes up to the last
 * complete character and keeps the rest for a next chunk that never comes. A leading BOM is dropped.
 */
export function decodeUtf8(bytes: Uint8Array, cut: boolean): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: cut });
  } catch {
    return null;
  }
}

/**
 * Shortens the string `value[key]` from the end until `value`'s JSON is at most `maxBytes` bytes,
 * keeping the longest prefix that fits (binary search), and then sets `truncated: true`. Unlike
 * {@link capResult} it appends no mark, so the string stays a clean prefix: its length stays a
 * multiple of `step` (4 keeps base64 whole) and a surrogate pair is never split. Returns `value`
 * itself when it already fits; the empty string when nothing fits (then the JSON may still be over).
 * @param maxBytes cap on the JSON, in bytes.
 */
export function fitString<T extends { truncated: boolean }>(value: T, key: StringKey<T>, maxBytes: number, step = 1): T {
  if (byteSize(value) <= maxBytes) return value;
  const full = value[key] as string;
  const prefix = (n: number): string => {
    let end = n - (n % step);
    const last = end > 0 ? full.charCodeAt(end - 1) : 0;
    if (last >= 0xd800 && last <= 0xdbff) end -= 1; // a high surrogate: keep its pair together
    return full.slice(0, end);
  };
  const cut = (n: number): T => ({ ...value, [key]: prefix(n), truncated: true });
  let lo = 0;
  let hi = full.length - 1; // something is cut, so `truncated: true` is never a lie
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (byteSize(cut(mid)) <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  return cut(lo);
}

/** The keys of `T` whose values are strings. */
type StringKey<T> = { [K in keyof T]: T[K] extends string ? K : never }[keyof T];

function longestString(v: unknown, path: (string | number)[] = []): { path: (string | number)[]; value: string } | null {
  if (typeof v === 'string') return { path, value: v };
  if (v === null || typeof v !== 'object') return null;
  let best: { path: (string | number)[]; value: string } | null = null;
  for (const [k, child] of Object.entries(v)) {
    const found = longestString(child, [...path, Array.isArray(v) ? Number(k) : k]);
    if (found && (!best || found.value.length > best.value.length)) best = found;
  }
  return best;
}

function replaceAt(v: unknown, path: (string | number)[], value: string): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(v)) return v.map((c, i) => (i === head ? replaceAt(c, rest, value) : c));
  const obj = v as Record<string, unknown>;
  return { ...obj, [head as string]: replaceAt(obj[head as string], rest, value) };
}

/** A body cut to {@link MAX_RESULT_BODY} characters; null stays null. */
export function clipBody(body: string | null | undefined): string | null {
  if (body === null || body === undefined) return null;
  return body.length > MAX_RESULT_BODY ? body.slice(0, MAX_RESULT_BODY - MARK.length) + MARK : body;
}

type Named = { login?: string | null; name?: string | null } | string | null | undefined;

/** A user's login, or null. */
export const loginOf = (u: { login?: string } | null | undefined): string | null => u?.login ?? null;

/** Label names from GitHub's label objects (or strings). */
export const labelNames = (labels: readonly Named[] | undefined): string[] =>
  (labels ?? []).map((l) => (typeof l === 'string' ? l : (l?.name ?? ''))).filter((n) => n !== '');

/** An issue (or pull request seen as an issue) in list and search results. */
export interface IssueSummary {
  number: number;
  title: string;
  state: string;
  /** True when the item is a pull request (GitHub's issue endpoints return both). */
  is_pull_request: boolean;
  user: string | null;
  labels: string[];
  assignees: string[];
  comments: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  html_url: string;
}

/** Shape of the GitHub issue fields these summaries read. */
export interface GitHubIssueLike {
  number: number;
  title: string;
  state: string;
  state_reason?: string | null;
  pull_request?: unknown;
  user?: { login?: string } | null;
  labels?: readonly Named[];
  assignees?: readonly ({ login?: string } | null)[] | null;
  comments?: number;
  created_at: string;
  updated_at: string;
  closed_at?: string | null;
  html_url: string;
  body?: string | null;
  locked?: boolean;
  milestone?: { title?: string } | null;
}

/** Trims a GitHub issue to {@link IssueSummary}. */
export function issueSummary(i: GitHubIssueLike): IssueSummary {
  return {
    number: i.number,
    title: i.title,
    state: i.state,
    is_pull_request: i.pull_request !== undefined && i.pull_request !== null,
    user: loginOf(i.user),
    labels: labelNames(i.labels),
    assignees: (i.assignees ?? []).map(loginOf).filter((l): l is string => l !== null),
    comments: i.comments ?? 0,
    created_at: i.created_at,
    updated_at: i.updated_at,
    closed_at: i.closed_at ?? null,
    html_url: i.html_url,
  };
}

/** A pull request's branch end (`head` or `base`). */
export interface PullEnd {
  ref: string;
  sha: string;
  /** `owner/repo` the branch lives in (null when the fork was deleted). */
  repo: string | null;
}

/** Shape of the GitHub pull request fields these summaries read. */
export interface GitHubPullLike {
  number: number;
  title: string;
  state: string;
  draft?: boolean;
  user?: { login?: string } | null;
  labels?: readonly Named[];
  head: { ref: string; sha: string; repo?: { full_name?: string } | null };
  base: { ref: string; sha: string; repo?: { full_name?: string } | null };
  created_at: string;
  updated_at: string;
  closed_at?: string | null;
  merged_at?: string | null;
  html_url: string;
}

/** A pull request in list results. */
export interface PullSummary {
  number: number;
  title: string;
  state: string;
  draft: boolean;
  user: string | null;
  labels: string[];
  head: PullEnd;
  base: PullEnd;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
  html_url: string;
}

const endOf = (e: GitHubPullLike['head']): PullEnd => ({ ref: e.ref, sha: e.sha, repo: e.repo?.full_name ?? null });

/** Trims a GitHub pull request to {@link PullSummary}. */
export function pullSummary(p: GitHubPullLike): PullSummary {
  return {
    number: p.number,
    title: p.title,
    state: p.state,
    draft: p.draft ?? false,
    user: loginOf(p.user),
    labels: labelNames(p.labels),
    head: endOf(p.head),
    base: endOf(p.base),
    created_at: p.created_at,
    updated_at: p.updated_at,
    closed_at: p.closed_at ?? null,
    merged_at: p.merged_at ?? null,
    html_url: p.html_url,
  };
}

/** A list result: the items (at most the caller's `limit`), and whether more were left out. */
export interface ListResult<T> {
  items: T[];
  /** True when the list was cut by `limit` or by the size cap. */
  truncated: boolean;
}

/**
 * Collects mapped items from Octokit's page iterator until `limit` items are held. Stops fetching
 * as soon as one item past the limit is seen (then `truncated` is true).
 */
export async function collect<T, U>(pages: AsyncIterable<{ data: T[] }>, limit: number, map: (item: T) => U): Promise<ListResult<U>> {
  const items: U[] = [];
  for await (const page of pages) {
    for (const item of page.data) {
      if (items.length === limit) return { items, truncated: true };
      items.push(map(item));
    }
  }
  return { items, truncated: false };
}

/** The items of Octokit's page iterator, one by one (pages fetched only as items are pulled). */
export async function* itemsOf<T>(pages: AsyncIterable<{ data: T[] }>): AsyncGenerator<T> {
  for await (const page of pages) yield* page.data;
}

/**
 * Merges two item streams, each already in ascending `key` order, into one ascending stream
 * (equal keys: `a`'s item first), as one-item pages for {@link collect}. Holds one item of each
 * stream, so each is read only as far as the merged stream is pulled; closing the merged stream
 * (e.g. `collect` stopping at its limit) closes both.
 */
export async function* mergeAscending<T>(a: AsyncIterable<T>, b: AsyncIterable<T>, key: (item: T) => string): AsyncGenerator<{ data: T[] }> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  try {
    let na = await ia.next();
    let nb = await ib.next();
    for (;;) {
      if (!na.done && (nb.done || key(na.value) <= key(nb.value))) {
        yield { data: [na.value] };
        na = await ia.next();
      } else if (!nb.done) {
        yield { data: [nb.value] };
        nb = await ib.next();
      } else {
        return;
      }
    }
  } finally {
    await Promise.all([ia.return?.(), ib.return?.()]);
  }
}
