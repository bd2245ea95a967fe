/**
 * The broker's RFC 9421 profile and the middleware that enforces it on `/v1/*` group requests.
 *
 * Profile (README "Signed requests"): label `broker`; parameters `created`, `keyid="<group>:<version>"`,
 * `alg="hmac-sha256"`, `tag="nanoclaw-broker"`; covered components at least `@method`, `@path`,
 * `@query`, plus `content-digest` and `idempotency-key` when the method carries a body.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import type { Clock } from '../clock.js';
import type { KeyStore } from '../../modules/identity/keys.js';
import { checkContentDigest, sha256 } from '../../protocol/digest.js';
import type { AppEnv } from './env.js';
import { ApiError } from './problem.js';
import { hmacSha256, macEquals, parseSignedFields, signatureBase, SignatureFormatError, type SignableRequest } from '../../protocol/signature.js';
import { serializeDictionary, type BareItem, type InnerList, type Item, type Parameters } from 'structured-headers';

/** The signature label the broker reads (`Signature-Input: broker=(…)`). */
export const SIGNATURE_LABEL = 'broker';
/** The required `tag` parameter (RFC 9421 §2.3), binding signatures to this application. */
export const SIGNATURE_TAG = 'nanoclaw-broker';
/** The only algorithm accepted. */
export const SIGNATURE_ALG = 'hmac-sha256';
/** Components every request covers. */
export const REQUIRED_COMPONENTS = ['@method', '@path', '@query'] as const;
/** Components a request with a body also covers. */
export const BODY_COMPONENTS = ['content-digest', 'idempotency-key'] as const;
/** Methods that carry a body and so need a digest and an idempotency key. */
export const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
/** `Idempotency-Key` syntax: 1–255 of `[A-Za-z0-9._:-]`. */
export const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{1,255}$/;

/** What the verification needs: key lookup, the clock, and the allowed skew in seconds. */
export interface VerifyDeps {
  keys: Pick<KeyStore, 'lookup'>;
  clock: Clock;
  clockSkewS: number;
}

/** A request that passed verification: who signed it and, for body methods, its idempotency key. */
export interface VerifiedRequest {
  group: string;
  keyVersion: number;
  keyid: string;
  idempotencyKey: string | null;
  /**
   * SHA-256 of the raw body bytes (32 bytes), as the `Content-Digest` check computed it (RFC 9530
   * `sha-256`), for body methods; null for the others. Callers reuse it (e.g. as the call's
   * idempotency fingerprint) instead of hashing the body again.
   */
  bodySha256: Buffer | null;
}

const invalid = (detail: string) => new ApiError('signature_invalid', detail);

/**
 * Verifies one request against the broker profile. Pure with respect to the database (a key
 * lookup reads, nothing writes).
 * @param body the raw body bytes (empty for GET).
 * @throws ApiError 401 `signature_missing` | `signature_invalid` | `signature_expired` |
 *   `digest_mismatch` | `unknown_key`, or 400 `idempotency_key_missing`.
 */
export function verifyBrokerSignature(req: SignableRequest, body: Uint8Array, deps: VerifyDeps): VerifiedRequest {
  let fields;
  try {
    fields = parseSignedFields(req.headers.get('signature-input'), req.headers.get('signature'), SIGNATURE_LABEL);
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : 'malformed signature');
  }
  if (!fields) {
    throw new ApiError('signature_missing', `Sign the request (RFC 9421) with Signature-Input and Signature under the label "${SIGNATURE_LABEL}".`);
  }
  const parsed = fields.input;
  const { params } = parsed;
  const created = params.get('created');
  const keyid = params.get('keyid');
  const expires = params.get('expires');
  if (params.get('alg') !== SIGNATURE_ALG) throw invalid(`The signature parameter alg must be "${SIGNATURE_ALG}".`);
  if (params.get('tag') !== SIGNATURE_TAG) throw invalid(`The signature parameter tag must be "${SIGNATURE_TAG}".`);
  if (typeof keyid !== 'string') throw invalid('The signature parameter keyid must be a string "<group>:<version>".');
  if (typeof created !== 'number' || !Number.isInteger(created)) throw invalid('The signature parameter created must be an integer (Unix seconds).');
  if (expires !== undefined && (typeof expires !== 'number' || !Number.isInteger(expires))) throw invalid('The signature parameter expires must be an integer.');

  const key = deps.keys.lookup(keyid);
  if (!key) throw new ApiError('unknown_key', `The key id "${keyid}" is unknown or retired; export the group's current secret.`);

  const nowS = deps.clock.now() / 1000;
  if (Math.abs(nowS - created) > deps.clockSkewS) {
    throw new ApiError('signature_expired', `The signature was created ${Math.round(nowS - created)} s from now; at most ${deps.clockSkewS} s is allowed.`);
  }
  if (typeof expires === 'number' && nowS > expires) throw new ApiError('signature_expired', 'The signature is past its expires parameter.');

  const hasBody = BODY_METHODS.has(req.method.toUpperCase());
  let idempotencyKey: string | null = null;
  let bodySha256: Buffer | null = null;
  if (hasBody) {
    idempotencyKey = req.headers.get('idempotency-key');
    if (idempotencyKey === null || !IDEMPOTENCY_KEY_RE.test(idempotencyKey)) {
      throw new ApiError('idempotency_key_missing', 'A request with a body needs an Idempotency-Key of 1–255 characters of [A-Za-z0-9._:-].');
    }
    bodySha256 = sha256(body);
    const digestProblem = checkContentDigest(req.headers.get('content-digest'), body, bodySha256);
    if (digestProblem) throw new ApiError('digest_mismatch', `${digestProblem} (RFC 9530, sha-256 over the raw body bytes).`);
  }
  const required = hasBody ? REQUIRED_WITH_BODY : REQUIRED_COMPONENTS;
  if (!required.every((c) => parsed.components.includes(c))) {
    const uncovered = required.filter((c) => !parsed.components.includes(c));
    throw invalid(`The signature must cover ${uncovered.map((c) => `"${c}"`).join(', ')}.`);
  }

  let base: string;
  try {
    base = signatureBase(req, parsed.components, parsed.signatureParams);
  } catch (err) {
    if (err instanceof SignatureFormatError) throw invalid(err.message);
    throw err;
  }
  if (!macEquals(hmacSha256(key.secret, base), fields.signature)) {
    throw invalid('The signature does not match the request.');
  }
  return { group: key.group, keyVersion: key.version, keyid: key.keyid, idempotencyKey, bodySha256 };
}
const REQUIRED_WITH_BODY: readonly string[] = [...REQUIRED_COMPONENTS, ...BODY_COMPONENTS];

/**
 * Hono middleware: reads the raw body, verifies the broker signature, and sets `principal`
 * (`type: 'group'`), `rawBody`, `bodySha256` (null for GET/HEAD/DELETE…) and, for body methods,
 * `idempotencyKey`.
 * Failures throw {@link ApiError} (rendered as problem+json by the app's error handler); a 401
 * carries {@link signatureChallenge}'s headers.
 */
export function requireGroupSignature(deps: VerifyDeps): MiddlewareHandler<AppEnv> {
  const accept = (c: Context<AppEnv>, body: Uint8Array) => {
    c.set('rawBody', body);
    let verified: VerifiedRequest;
    try {
      verified = verifyBrokerSignature(c.req.raw, body, deps);
    } catch (err) {
      throw withChallenge(err, c.req.method);
    }
    c.set('principal', { type: 'group', group: verified.group, keyVersion: verified.keyVersion, keyid: verified.keyid });
    c.set('bodySha256', verified.bodySha256);
    if (verified.idempotencyKey !== null) c.set('idempotencyKey', verified.idempotencyKey);
  };
  // Not an async function: a GET is verified and handed on in the same tick (no await on an
  // empty body), and a body request waits for its bytes only.
  return (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') {
      accept(c, EMPTY);
      return next();
    }
    return readRawBody(c).then((body) => {
      accept(c, body);
      return next();
    });
  };
}

/**
 * The challenge of a signature 401 (RFC 9110 §11.6.1 requires one on every 401):
 * `WWW-Authenticate: Signature realm="nanoclaw-broker"`, and what to sign as RFC 9421 §5.1's
 * `Accept-Signature`: the broker label with the components `method` must cover, `created`, `alg`
 * and `tag` (no `keyid`: it is the group's). `Signature` is not a registered authentication scheme;
 * RFC 9421 defines none, so the challenge names the field profile the README documents.
 */
export function signatureChallenge(method: string): Record<string, string> {
  return BODY_METHODS.has(method.toUpperCase()) ? BODY_CHALLENGE : PLAIN_CHALLENGE;
}

function challenge(components: readonly string[]): Record<string, string> {
  const params: Parameters = new Map<string, BareItem>([
    ['created', true],
    ['alg', SIGNATURE_ALG],
    ['tag', SIGNATURE_TAG],
  ]);
  const wanted: InnerList = [components.map((c): Item => [c, new Map()]), params];
  return { 'WWW-Authenticate': `Signature realm="${SIGNATURE_TAG}"`, 'Accept-Signature': serializeDictionary(new Map([[SIGNATURE_LABEL, wanted]])) };
}
const PLAIN_CHALLENGE = challenge(REQUIRED_COMPONENTS);
const BODY_CHALLENGE = challenge([...REQUIRED_COMPONENTS, ...BODY_COMPONENTS]);

/** A 401 of the verification with {@link signatureChallenge}'s headers; any other error as is. */
function withChallenge(err: unknown, method: string): unknown {
  return err instanceof ApiError && err.status === 401 ? new ApiError(err.code, err.detail, err.extensions, { ...signatureChallenge(method), ...err.headers }) : err;
}

const EMPTY = new Uint8Array(0);

/**
 * Reads a request's body bytes once. GET/HEAD have none. Under @hono/node-server the bytes are
 * read straight from Node's IncomingMessage ({@link readIncoming}), skipping the web-stream copy.
 * Every body read in the broker goes through here, so it enforces the body limit for bodies whose
 * size the headers did not tell (chunked); the app answers a `Content-Length` over the limit
 * before routing. The limit is the `bodyLimitBytes` context variable (none when unset).
 * @throws ApiError 413 `payload_too_large` past the limit; Error when the client goes away before
 *   the body is complete.
 */
export async function readRawBody(c: Context<AppEnv>): Promise<Uint8Array> {
  const method = c.req.method;
  if (method === 'GET' || method === 'HEAD') return EMPTY;
  const limit = c.get('bodyLimitBytes') ?? Infinity;
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && !incoming.readableDidRead) return readIncoming(incoming, limit);
  const req = c.req.raw;
  if (req.body === null || req.bodyUsed) return EMPTY;
  const body = new Uint8Array(await req.arrayBuffer());
  if (body.length > limit) throw tooLarge(limit);
  return body;
}

const tooLarge = (limit: number) => new ApiError('payload_too_large', `The request body is larger than ${limit} bytes.`);

/**
 * Collects an IncomingMessage's remaining bytes with `data`/`end` listeners (one Promise, not an
 * async iterator's Promise per chunk). Settles once: with the bytes on `end`; rejected with 413
 * `payload_too_large` as soon as more than `limit` bytes came, on `error`, on `close` before
 * `end` (the client went away), or at once when the stream is already destroyed. The listeners
 * are removed when it settles.
 */
function readIncoming(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  if (incoming.destroyed) return Promise.reject(incoming.errored ?? new Error('The request was closed before its body was read.'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      cleanup();
      reject(tooLarge(limit));
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(incoming.errored ?? new Error('The client closed the connection before the body was complete.'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}
