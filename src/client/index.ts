/**
 * A small typed client that signs requests with a group secret and sends them: the broker's RFC
 * 9421 signing profile (`src/protocol/profile.ts`), the one the verifier checks. Agents, the CLI
 * and the tests use it. Node 20+ (`fetch`, `node:crypto`).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { serializeDictionary, type Item } from 'structured-headers';
import { bodyDigest, coveredComponents, hasBody, keyidGroup, SIGNATURE_LABEL, signingParams } from '../protocol/profile.js';
import { hmacSha256, serializeSignatureParams, signatureBase, signatureParams } from '../protocol/signature.js';

/** A group credential: `keyid` is `<group>:<version>`, `secret` the raw HMAC key. */
export interface GroupCredential {
  keyid: string;
  secret: Uint8Array;
}

/**
 * Reads a `.ipc_secret` file written by `broker secrets export`:
 * `{"keyid": "<group>:<version>", "alg": "hmac-sha256", "secret": "<base64url>"}`.
 * @throws Error when the file is missing or not in that shape.
 */
export function loadCredential(file: string): GroupCredential {
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { keyid?: unknown; secret?: unknown };
  if (typeof parsed.keyid !== 'string' || typeof parsed.secret !== 'string') throw new Error(`${file}: not a broker secret file`);
  return { keyid: parsed.keyid, secret: Buffer.from(parsed.secret, 'base64url') };
}

/** What to sign: method, absolute URL, headers, and the exact body bytes (if any). */
export interface RequestToSign {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Required for POST/PUT/PATCH; 1–255 of `[A-Za-z0-9._:-]`. */
  idempotencyKey?: string;
}

/**
 * Signs a request: adds `Content-Digest` and `Idempotency-Key` for body methods, then
 * `Signature-Input` and `Signature` (label `broker`) covering `@method @path @query` and those two.
 * @param createdS the `created` parameter, Unix seconds (default now).
 * @returns the full header set to send (input headers included, names lowercased).
 */
export function signRequest(req: RequestToSign, cred: GroupCredential, createdS = Math.floor(Date.now() / 1000)): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  const method = req.method.toUpperCase();
  if (hasBody(method)) {
    headers['content-digest'] = bodyDigest(req.body ?? '');
    if (req.idempotencyKey !== undefined) headers['idempotency-key'] = req.idempotencyKey;
  }
  const components = coveredComponents(method, headers);
  const params = serializeSignatureParams(signatureParams(components, signingParams(createdS, cred.keyid)));
  const base = signatureBase({ method, url: req.url, headers: { get: (n) => headers[n.toLowerCase()] ?? null } }, components, params);
  const signature = hmacSha256(cred.secret, base);
  headers['signature-input'] = `${SIGNATURE_LABEL}=${params}`;
  headers['signature'] = serializeDictionary(new Map<string, Item>([[SIGNATURE_LABEL, [signature, new Map()]]]));
  return headers;
}

/** A response as the client returns it: status, headers, and the parsed JSON body (or text). */
export interface BrokerResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** Options for {@link BrokerClient}. */
export interface BrokerClientOptions {
  /** Broker origin, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  credential: GroupCredential;
  /** Replaces `fetch` (e.g. `app.request` in-process). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Signature `created` source in Unix ms (default `Date.now`). */
  now?: () => number;
}

/** Per-request options: a query, a JSON body, an explicit idempotency key, extra headers. */
export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  /** Raw body bytes instead of `json` (sent as-is). */
  rawBody?: Uint8Array | string;
  /** Defaults to a random UUID for body methods. */
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

/** Signs and sends requests as one group. */
export class BrokerClient {
  constructor(private readonly opts: BrokerClientOptions) {}

  /** The group this client signs as (the part of the key id before `:`). */
  get group(): string {
    return keyidGroup(this.opts.credential.keyid);
  }

  /**
   * Sends a signed request and parses the JSON (or problem+json) answer. Never throws on an HTTP
   * error status.
   * @throws BrokerUnreachableError when no complete answer arrives (connection refused, DNS, TLS,
   *   a timeout or a connection closed mid-answer), naming the URL and the cause.
   */
  async request<T = any>(method: string, path: string, options: CallOptions = {}): Promise<BrokerResponse<T>> {
    const url = new URL(path, this.opts.baseUrl);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const upper = method.toUpperCase();
    const withBody = hasBody(upper);
    const body = options.rawBody ?? (options.json !== undefined ? JSON.stringify(options.json) : withBody ? '{}' : undefined);
    const headers = signRequest(
      {
        method: upper,
        url: url.href,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
        body,
        idempotencyKey: withBody ? (options.idempotencyKey ?? randomUUID()) : undefined,
      },
      this.opts.credential,
      Math.floor((this.opts.now ?? Date.now)() / 1000),
    );
    const doFetch = this.opts.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
    let res: Response;
    let text: string;
    try {
      res = await doFetch(url.href, { method: upper, headers, body });
      text = await res.text();
    } catch (err) {
      throw new BrokerUnreachableError(upper, url.href, err);
    }
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  /** Signed GET. */
  get<T = any>(path: string, options?: CallOptions): Promise<BrokerResponse<T>> {
    return this.request<T>('GET', path, options);
  }

  /** Signed POST with a JSON body. */
  post<T = any>(path: string, json?: unknown, options: CallOptions = {}): Promise<BrokerResponse<T>> {
    return this.request<T>('POST', path, { ...options, json });
  }

  /**
   * Asks for a capability as this group: `POST /v1/grant-requests` (docs/grants.md, "Access
   * requests"). The answer is 201 with the pending request (`{id, status: "pending", …}`), or a
   * problem (422 `level_above_ceiling`, `secret_in_input`, …). Retrying with the same
   * `idempotencyKey` and body answers the same request.
   * @param idempotencyKey defaults to a random UUID; pass one to retry safely.
   * @throws BrokerUnreachableError when the broker cannot be reached.
   */
  requestAccess<T = any>(request: AccessRequest, idempotencyKey?: string): Promise<BrokerResponse<T>> {
    return this.post<T>('/v1/grant-requests', request, idempotencyKey === undefined ? {} : { idempotencyKey });
  }

  /**
   * One of this group's access requests and its outcome: `GET /v1/grant-requests/{id}` (`status`,
   * `decision_reason`, `grant_id`, `grant_status`); 404 `not_found` for another group's.
   * @throws BrokerUnreachableError when the broker cannot be reached.
   */
  accessRequest<T = any>(id: string): Promise<BrokerResponse<T>> {
    return this.get<T>(`/v1/grant-requests/${encodeURIComponent(id)}`);
  }
}

/**
 * The body of an access request (`POST /v1/grant-requests`): new terms (`provider`, `level`,
 * `allowed_actions`, `resources`) or `renews` (an active grant of the group, whose terms are
 * kept), and always `ttl_s` (the grant's lifetime after activation, seconds, at most 604800) and
 * a `justification` (at most 900 characters, never a secret).
 */
export interface AccessRequest {
  provider?: string;
  level?: 1 | 2 | 3 | 'L1' | 'L2' | 'L3';
  allowed_actions?: string[];
  resources?: string[];
  ttl_s: number;
  justification: string;
  renews?: string;
}

/** What a network failure's error codes mean, for the ones a broker client meets. */
const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there; is `broker serve` running, and is the URL right?',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed for now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the answer',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the answer',
  TimeoutError: 'timed out',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed',
};

const isTlsCode = (code: string): boolean =>
  /^(ERR_SSL_|ERR_TLS_|CERT_)/.test(code) ||
  ['EPROTO', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'HOSTNAME_MISMATCH'].includes(code);

/**
 * The innermost error code of a failed `fetch` and a short reason: undici wraps the socket's
 * error in `err.cause` (an `AggregateError` of every address tried, when several were); an
 * aborted or timed-out request is a `DOMException` named `AbortError`/`TimeoutError`.
 */
function networkCause(err: unknown): { code: string | null; reason: string } {
  let e: unknown = err;
  for (let depth = 0; depth < 5; depth += 1) {
    const next = (e as { cause?: unknown }).cause;
    if (next === undefined || next === null) break;
    e = next;
  }
  if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0];
  const fields = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; name?: unknown; message?: unknown };
  const message = typeof fields.message === 'string' ? fields.message : String(e);
  const code = typeof fields.code === 'string' ? fields.code : fields.name === 'TimeoutError' || fields.name === 'AbortError' ? fields.name : null;
  if (code === null) return { code: null, reason: message };
  if (isTlsCode(code)) return { code, reason: `TLS failed: ${/routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message}` };
  return { code, reason: NETWORK_CAUSES[code] ?? message };
}

/**
 * Thrown by {@link BrokerClient.request} when no complete HTTP answer arrives: the message names
 * the method, the URL and the cause, e.g. `cannot reach the broker: GET http://127.0.0.1:8787/v1/whoami
 * failed with ECONNREFUSED (connection refused: …)`, instead of undici's bare "fetch failed".
 * The original error is `cause`. Whether a request that was sent took effect is unknown; a call
 * retried under the same Idempotency-Key is replayed, never run twice.
 */
export class BrokerUnreachableError extends Error {
  override name = 'BrokerUnreachableError';
  /** The innermost error code (`ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_CONNECT_TIMEOUT`, `ERR_SSL_…`, `TimeoutError`), or null. */
  readonly causeCode: string | null;
  /** A short human reason for {@link causeCode}. */
  readonly reason: string;

  constructor(
    readonly method: string,
    readonly url: string,
    cause: unknown,
  ) {
    const { code, reason } = networkCause(cause);
    super(`cannot reach the broker: ${method} ${url} failed${code === null ? '' : ` with ${code}`} (${reason})`, { cause });
    this.causeCode = code;
    this.reason = reason;
  }
}

export { IPC_BASE_URL, ipcFetch, IpcTimeoutError, type IpcFetchOptions } from './ipc.js';
