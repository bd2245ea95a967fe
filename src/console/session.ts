/**
 * The console's session: an operator's or auditor's bearer token, pasted once on the sign-in page,
 * kept in a cookie (`console_session`) that holds the token itself. The cookie is `HttpOnly`,
 * `SameSite=Strict`, `Path=/console`, `Secure` when the request came over TLS, and ends with the
 * token (`Expires` = the token's `exp`). Nothing is kept on the server, so a
 * restart signs nobody out; every request verifies the token again with the broker's
 * `TokenService.verify` (signature, expiry, revocations), so a revoked token ends its session at once.
 *
 * CSRF: `hono/csrf` refuses a form post whose `Origin` is not the broker's own, and every form also
 * carries a per-session token (`_csrf`): HMAC-SHA256 of the session's token under a key this process
 * draws at start (a form rendered before a restart must be reloaded). The sign-in form, which has
 * no session yet, uses a double-submit cookie (`console_login`) instead.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { TokenClaims } from '../modules/tokens/service.js';

/** The session cookie's name. */
export const SESSION_COOKIE = 'console_session';
/** The sign-in form's double-submit cookie. */
export const LOGIN_COOKIE = 'console_login';
/** The path every console cookie is scoped to. */
export const CONSOLE_PATH = '/console';

/** What a signed-in request carries: the token (sent to the API as `Bearer`), its claims and the form token. */
export interface Session {
  token: string;
  claims: TokenClaims;
  /** The per-session CSRF token every form carries as `_csrf`. */
  csrf: string;
}

/** Verifies a bearer token (the broker's `TokenService.verify`); throws ApiError 401 when it does not verify. */
export type VerifyToken = (token: string) => Promise<TokenClaims>;

/** True when the request reached the broker over TLS (the URL's scheme, or `X-Forwarded-Proto` is not trusted). */
function overTls(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:';
}

/** Draws the key that binds form tokens to sessions (32 random bytes, this process only). */
export function csrfKey(): Buffer {
  return randomBytes(32);
}

/** The form token of a session: base64url HMAC-SHA256 of its bearer token. */
export function csrfTokenOf(key: Buffer, token: string): string {
  return createHmac('sha256', key).update(token).digest('base64url');
}

/** Constant-time comparison of two strings (false when either is missing or lengths differ). */
export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The session of a request: the cookie's token once it verifies, else null (no cookie, expired, revoked). */
export async function readSession(c: Context, key: Buffer, verify: VerifyToken): Promise<Session | null> {
  const token = getCookie(c, SESSION_COOKIE);
  if (token === undefined || token.length === 0 || token.length > 4096) return null;
  try {
    const claims = await verify(token);
    return { token, claims, csrf: csrfTokenOf(key, token) };
  } catch {
    return null;
  }
}

/** Sets the session cookie for a verified token, expiring with it (`nowMs`: the broker clock, Unix ms). */
export function startSession(c: Context, token: string, claims: TokenClaims, nowMs: number): void {
  // `Expires` only (no Max-Age, which browsers would prefer): the cookie ends at the token's own
  // `exp`, whatever time passed between this clock and the browser's.
  if (claims.expiresAt <= nowMs) return;
  setCookie(c, SESSION_COOKIE, token, { path: CONSOLE_PATH, httpOnly: true, secure: overTls(c), sameSite: 'Strict', expires: new Date(claims.expiresAt) });
}

/** Clears the session cookie. */
export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, httpOnly: true, secure: overTls(c), sameSite: 'Strict' });
}

/** The sign-in form's double-submit value: the cookie's, or a fresh one set now (10 minutes). */
export function loginNonce(c: Context): string {
  const existing = getCookie(c, LOGIN_COOKIE);
  if (existing !== undefined && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const nonce = randomBytes(32).toString('base64url');
  setCookie(c, LOGIN_COOKIE, nonce, { path: CONSOLE_PATH, httpOnly: true, secure: overTls(c), sameSite: 'Strict', maxAge: 600 });
  return nonce;
}

/** The sign-in form's cookie value, as sent. */
export function loginCookie(c: Context): string | undefined {
  return getCookie(c, LOGIN_COOKIE);
}
