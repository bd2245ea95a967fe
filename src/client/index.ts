/**
 * A small typed client that signs requests with a group secret (the broker's RFC 9421 profile)
 * and sends them. Agents, the CLI and the tests use it. Node 20+ (`fetch`, `node:crypto`).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { serializeDictionary, type Item } from 'structured-headers';
import { contentDigest } from '../http/digest.js';
import { hmacSha256, serializeSignatureParams, signatureBase, signatureParams } from '../http/signature.js';
import { BODY_COMPONENTS, BODY_METHODS, REQUIRED_COMPONENTS, SIGNATURE_ALG, SIGNATURE_LABEL, SIGNATURE_TAG } from '../http/verify.js';

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
  const components: string[] = [...REQUIRED_COMPONENTS];
  if (BODY_METHODS.has(method)) {
    headers['content-digest'] = contentDigest(req.body ?? '');
    if (req.idempotencyKey !== undefined) headers['idempotency-key'] = req.idempotencyKey;
    components.push(...BODY_COMPONENTS.filter((c) => headers[c] !== undefined));
  }
  const params = serializeSignatureParams(signatureParams(components, { created: createdS, keyid: cred.keyid, alg: SIGNATURE_ALG, tag: SIGNATURE_TAG }));
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
    return this.opts.credential.keyid.split(':')[0]!;
  }

  /**
   * Sends a signed request and parses the JSON (or problem+json) answer. Never throws on an HTTP
   * error status; throws only when the network fails.
   */
  async request<T = any>(method: string, path: string, options: CallOptions = {}): Promise<BrokerResponse<T>> {
    const url = new URL(path, this.opts.baseUrl);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const upper = method.toUpperCase();
    const hasBody = BODY_METHODS.has(upper);
    const body = options.rawBody ?? (options.json !== undefined ? JSON.stringify(options.json) : hasBody ? '{}' : undefined);
    const headers = signRequest(
      {
        method: upper,
        url: url.href,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
        body,
        idempotencyKey: hasBody ? (options.idempotencyKey ?? randomUUID()) : undefined,
      },
      this.opts.credential,
      Math.floor((this.opts.now ?? Date.now)() / 1000),
    );
    const doFetch = this.opts.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
    const res = await doFetch(url.href, { method: upper, headers, body });
    const text = await res.text();
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
}
