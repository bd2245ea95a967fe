import type { Logger } from 'pino';

/** Who is calling: an agent group (RFC 9421 signature) or a token holder (bearer JWT). */
export type Principal =
  | { type: 'group'; group: string; keyVersion: number; keyid: string }
  | { type: 'token'; role: 'operator' | 'auditor'; subject: string };

/** Hono context variables set by the broker's middleware. */
export interface AppVariables {
  /** Per-request id (echoes a valid `X-Request-Id`, otherwise a new one); on every log line. */
  requestId: string;
  /** Child logger bound to the request id. */
  log: Logger;
  /** Set by the authentication middleware. */
  principal: Principal;
  /** The raw request body bytes, read once (empty for GET). */
  rawBody: Uint8Array;
  /** The most body bytes a request may send (`BROKER_BODY_LIMIT_BYTES`), enforced by `readRawBody`. */
  bodyLimitBytes: number;
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
