/**
 * The file transport's formats (the seed's IPC, for agent containers without a network): a signed
 * request is a JSON file `requests/<request id>.json` in the group's IPC directory, and its answer
 * the JSON file `responses/<request id>.json`. The file's fields stand in for an HTTP request's
 * method, path, query, header fields and body, and the RFC 9421 signature covers the same
 * components as over HTTP (the broker's profile, `profile.ts`), resolved from those fields:
 *
 * - `@method` is `method`;
 * - `@path` is `path`; `@query` is `?` followed by `query` (just `?` when `query` is absent or
 *   empty), both exactly as a WHATWG URL serializes them (`new URL(path + '?' + query, origin)`
 *   must give them back unchanged);
 * - a header component (`content-digest`, `idempotency-key`) is `headers[<name>]`;
 * - the body bytes (which `Content-Digest` covers) are `body` as UTF-8, or `body_base64` decoded.
 *
 * Pure: no I/O; the client writes files with {@link requestFile}, the broker reads them with
 * {@link parseRequestFile}, so the two cannot drift apart.
 */
import { z } from 'zod';
import { hasBody } from './profile.js';

/**
 * The origin the broker gives a file request when it turns it into an HTTP request (RFC 6761
 * reserves `.invalid`). No covered component depends on it (`@authority` is not in the profile).
 */
export const IPC_ORIGIN = 'http://ipc.invalid';

/** The largest request id: the broker's `X-Request-Id` limit (128 characters). */
export const IPC_ID_MAX = 128;

/**
 * A request id, the stem of the request file's name and of its answer's: 1–128 of
 * `[A-Za-z0-9._:-]`, not starting with `.` (a dotfile is a temporary name).
 */
export const IPC_ID_RE = /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$/;

/** The methods a request file may name. */
export const IPC_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The header fields a request file may carry (lower-case names): the signature's, the
 * idempotency key, the body's type, and `If-Match` for versioned task writes. Any other name
 * (`authorization` among them: the file transport serves agent groups, never bearer tokens) makes
 * the file malformed.
 */
export const IPC_HEADERS = ['signature-input', 'signature', 'content-digest', 'idempotency-key', 'content-type', 'if-match'] as const;

/**
 * True for a name the broker leaves alone because its writer is not done with it: a dotfile
 * (`.x.json`) or a name ending in `.tmp`. Writers write under such a name and rename it to
 * `<request id>.json` once the file is complete (rename is atomic within a directory).
 */
export function isTemporaryName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp');
}

/** The request id of a request file's name `<request id>.json`, or null when the name is not one. */
export function requestIdOf(name: string): string | null {
  if (!name.endsWith('.json')) return null;
  const id = name.slice(0, -'.json'.length);
  return IPC_ID_RE.test(id) ? id : null;
}

/** A request file, as JSON. Exactly one of `body` and `body_base64`, and only for POST, PUT, PATCH. */
export interface IpcRequestFile {
  /** Upper-case: one of {@link IPC_METHODS}. */
  method: string;
  /** The request path, starting with `/`, as a URL serializes it (percent-encoded). */
  path: string;
  /** The query string without its `?`, as a URL serializes it; absent or empty for none. */
  query?: string;
  /** Header fields by lower-case name (see {@link IPC_HEADERS}). */
  headers: Record<string, string>;
  /** The body as text (its UTF-8 bytes are the body). */
  body?: string;
  /** The body's bytes in base64 (RFC 4648 §4), for a body that is not UTF-8 text. */
  body_base64?: string;
}

/** An answer file, as JSON: what the broker answered the request. */
export interface IpcResponseFile {
  request_id: string;
  /** The HTTP status the broker answered with. */
  status: number;
  /** Response header fields by lower-case name (`content-type`, `retry-after`, `idempotent-replayed`, `etag`…). */
  headers: Record<string, string>;
  /** The body: parsed JSON for a JSON media type (`application/json`, `application/problem+json`), else the text, or null for none. */
  body: unknown;
}

const Base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'not base64 (RFC 4648 §4, padded)');

const RequestFileSchema = z.strictObject({
  method: z.enum(IPC_METHODS),
  path: z.string().min(1).max(2048),
  query: z.string().max(4096).optional(),
  headers: z
    .record(z.string(), z.string().max(8192).regex(/^[\t\x20-\x7e]*$/, 'a header value is printable ASCII (no CR, LF or NUL)'))
    .refine((h) => Object.keys(h).every((k) => (IPC_HEADERS as readonly string[]).includes(k)), { message: `header names are lower-case, one of ${IPC_HEADERS.join(', ')}` }),
  body: z.string().optional(),
  body_base64: Base64.optional(),
});

/** A request file turned into the parts of an HTTP request. */
export interface IpcRequest {
  method: string;
  /** Absolute URL: {@link IPC_ORIGIN}, the path, the query. */
  url: string;
  path: string;
  headers: Record<string, string>;
  /** The exact body bytes (empty for none). */
  body: Uint8Array;
}

/** Why a request file is malformed: a short reason for machines and a sentence for people. */
export interface IpcFormatProblem {
  reason: 'malformed_json' | 'invalid_file';
  detail: string;
}

/**
 * Reads a request file's bytes: JSON (UTF-8) in the {@link IpcRequestFile} shape, a path that is
 * its own URL serialization (no `.`/`..` segments, no `//` start, no percent-encoded `/`, `\`,
 * `.` or NUL), a query likewise, a body only for POST, PUT and PATCH.
 * @returns the request, or the problem (the broker moves such a file to `rejected/`).
 */
export function parseRequestFile(bytes: Uint8Array): IpcRequest | IpcFormatProblem {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return { reason: 'malformed_json', detail: `The request file is not JSON in UTF-8: ${(err as Error).message}` };
  }
  const parsed = RequestFileSchema.safeParse(json);
  if (!parsed.success) {
    return { reason: 'invalid_file', detail: `The request file is not in the IPC format: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}` };
  }
  const f = parsed.data;
  const pathProblem = checkPath(f.path);
  if (pathProblem) return { reason: 'invalid_file', detail: pathProblem };
  const query = f.query ?? '';
  const url = new URL(`${f.path}${query === '' ? '' : `?${query}`}`, IPC_ORIGIN);
  if (url.pathname !== f.path) return { reason: 'invalid_file', detail: `path must be written as a URL serializes it ("${url.pathname}").` };
  if (url.search !== (query === '' ? '' : `?${query}`)) return { reason: 'invalid_file', detail: `query must be written as a URL serializes it ("${url.search.slice(1)}").` };
  if (f.body !== undefined && f.body_base64 !== undefined) return { reason: 'invalid_file', detail: 'Give the body as body or as body_base64, not both.' };
  const withBody = hasBody(f.method);
  if (!withBody && ((f.body ?? '') !== '' || (f.body_base64 ?? '') !== '')) return { reason: 'invalid_file', detail: `A ${f.method} request has no body.` };
  const body = f.body_base64 !== undefined ? new Uint8Array(Buffer.from(f.body_base64, 'base64')) : new TextEncoder().encode(f.body ?? '');
  return { method: f.method, url: url.href, path: f.path, headers: f.headers, body };
}

/** Why `path` is not a plain absolute path, or null when it is one. */
function checkPath(p: string): string | null {
  if (!p.startsWith('/') || p.startsWith('//')) return 'path must start with a single "/".';
  if (/[\s\\]/.test(p) || /%(?:2f|5c|2e|00)/i.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
    return 'path must not hold "." or ".." segments, white space, "\\" or an encoded "/", "\\", "." or NUL.';
  }
  return null;
}

/**
 * The request file for an HTTP request the client signed: `url`'s path and query (as the URL
 * serializes them, which is what the signature covered), the signed header fields, and the body
 * (text as `body`, bytes as `body_base64`).
 * @param headers lower-case names; only {@link IPC_HEADERS} may appear.
 * @throws Error naming a header the file format cannot carry.
 */
export function requestFile(method: string, url: URL, headers: Record<string, string>, body: string | Uint8Array | undefined): IpcRequestFile {
  const names = Object.keys(headers);
  const foreign = names.filter((n) => !(IPC_HEADERS as readonly string[]).includes(n));
  if (foreign.length > 0) throw new Error(`the IPC file format cannot carry the header ${foreign.join(', ')}`);
  const file: IpcRequestFile = { method: method.toUpperCase(), path: url.pathname, headers };
  if (url.search !== '') file.query = url.search.slice(1);
  if (typeof body === 'string') file.body = body;
  else if (body !== undefined) file.body_base64 = Buffer.from(body).toString('base64');
  return file;
}
