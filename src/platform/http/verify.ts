/**
 * The RFC 9421 verifier: the middleware that checks the broker's signing profile
 * (`src/protocol/profile.ts`: label, parameters, covered components, `Content-Digest`,
 * `Idempotency-Key`) on `/v1/*` group requests, plus the signature's freshness (`created` within
 * the allowed clock skew, `expires`) and the group's key.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import type { Clock } from '../clock.js';
import { checkContentDigest, sha256 } from '../../protocol/digest.js';
import { acceptSignature, checkParams, hasBody, IDEMPOTENCY_KEY_RE, requiredComponents, SIGNATURE_LABEL, SIGNATURE_TAG } from '../../protocol/profile.js';
import { hmacSha256, macEquals, parseSignedFields, signatureBase, SignatureFormatError, type SignableRequest } from '../../protocol/signature.js';
import type { AppEnv } from './env.js';
import { ApiError } from './problem.js';

/** A group's signing key as the verifier needs it: who it names, and the HMAC secret. */
export interface SigningKey {
  group: string;
  version: number;
  /** `<group>:<version>`. */
  keyid: string;
  secret: Uint8Array;
}

/**
 * What the verification needs: the key lookup (the identity module's `KeyStore` is one: null for
 * an unknown or retired `keyid`), the clock, and the allowed skew in seconds.
 */
export interface VerifyDeps {
  keys: { lookup(keyid: string): SigningKey | null };
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
  const checked = checkParams(parsed.params);
  if (typeof checked === 'string') throw invalid(checked);
  const { keyid, created, expires } = checked;

  const key = deps.keys.lookup(keyid);
  if (!key) throw new ApiError('unknown_key', `The key id "${keyid}" is unknown or retired; export the group's current secret.`);

  const nowS = deps.clock.now() / 1000;
  if (Math.abs(nowS - created) > deps.clockSkewS) {
    throw new ApiError('signature_expired', `The signature was created ${Math.round(nowS - created)} s from now; at most ${deps.clockSkewS} s is allowed.`);
  }
  if (typeof expires === 'number' && nowS > expires) throw new ApiError('signature_expired', 'The signature is past its expires parameter.');

  let idempotencyKey: string | null = null;
  let bodySha256: Buffer | null = null;
  if (hasBody(req.method)) {
    idempotencyKey = req.headers.get('idempotency-key');
    if (idempotencyKey === null || !IDEMPOTENCY_KEY_RE.test(idempotencyKey)) {
      throw new ApiError('idempotency_key_missing', 'A request with a body needs an Idempotency-Key of 1–255 characters of [A-Za-z0-9._:-].');
    }
    bodySha256 = sha256(body);
    const digestProblem = checkContentDigest(req.headers.get('content-digest'), body, bodySha256);
    if (digestProblem) throw new ApiError('digest_mismatch', `${digestProblem} (RFC 9530, sha-256 over the raw body bytes).`);
  }
  const required = requiredComponents(req.method);
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
 * `Accept-Signature` (the profile's {@link acceptSignature}). `Signature` is not a registered
 * authentication scheme; RFC 9421 defines none, so the challenge names the field profile.
 */
export function signatureChallenge(method: string): Record<string, string> {
  return { 'WWW-Authenticate': `Signature realm="${SIGNATURE_TAG}"`, 'Accept-Signature': acceptSignature(method) };
}

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
