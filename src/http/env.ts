import type { Logger } from 'pino';

/** Who is calling: an agent group (RFC 9421 signature) or a token holder (bearer JWT). */
export type Principal =
  | { type: 'group'; group: string; keyVersion: number; keyid: string }
  | { type: 'token'; role: 'operator' | 'auditor'; subject: string };

/** Hono context variables set by the broker's middleware. */
export interface AppVariables {
  /**
   * Per-request id (echoes a valid `X-Request-Id`, otherwise a new one); on every log line. Set
   * for `/v1/*` routes (the app's fetch wrapper keeps it for every request as {@link RequestState}).
   */
  requestId: string;
  /** Child logger bound to the request id; set for `/v1/*` routes. */
  log: Logger;
  /** Set by the authentication middleware. */
  principal: Principal;
  /** The raw request body bytes, read once (empty for GET). */
  rawBody: Uint8Array;
  /** The verified `Idempotency-Key` of a signed POST/PUT/PATCH. */
  idempotencyKey: string;
  /**
   * SHA-256 of `rawBody` (32 bytes) when the signature middleware computed it for the
   * `Content-Digest` check (signed POST/PUT/PATCH); null otherwise (other methods, bearer tokens).
   */
  bodySha256: Buffer | null;
}

/** The Hono environment type shared by every route. */
export type AppEnv = { Variables: AppVariables };

/**
 * What the app's fetch wrapper (`createApp`) keeps for each request, on its Request object: the
 * request id, the body limit in bytes (`readRawBody` enforces it), and the child logger bound to
 * the request id once something asked for it.
 */
export interface RequestState {
  requestId: string;
  bodyLimitBytes: number;
  log: Logger | undefined;
}

/** The property of a Request that holds its {@link RequestState}. */
export const kRequestState = Symbol('nanoclaw-broker.request-state');

/** A request's {@link RequestState}; undefined for a request that did not come through `createApp`. */
export function requestState(request: Request): RequestState | undefined {
  return (request as unknown as Record<symbol, RequestState | undefined>)[kRequestState];
}
