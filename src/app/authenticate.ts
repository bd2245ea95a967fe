/**
 * Authentication for `/v1/*` (docs/api.md, "Authentication"): a bearer JWT (operators, auditors)
 * or, without an `Authorization` header, the RFC 9421 group signature. Routes then say who may
 * call them with the guards of `src/platform/http/guard.ts`.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { Clock } from '../platform/clock.js';
import type { AppEnv, Principal } from '../platform/http/env.js';
import { ApiError } from '../platform/http/problem.js';
import { BODY_METHODS, IDEMPOTENCY_KEY_RE } from '../protocol/profile.js';
import { readRawBody, requireGroupSignature } from '../platform/http/verify.js';
import type { KeyStore } from '../modules/identity/keys.js';
import { wwwAuthenticate, type TokenService } from '../modules/tokens/service.js';
import type { ReadModel } from './read-model.js';

/**
 * Path prefixes a bearer token may reach at all; every other `/v1/*` path answers a token 403
 * `forbidden` before its handler runs (default deny, so a route that forgets its guard never
 * serves operators or auditors by accident). Each route still checks the role it needs.
 */
export const TOKEN_ROUTE_PREFIXES: readonly string[] = ['/v1/grants', '/v1/grant-requests', '/v1/audit', '/v1/calls', '/v1/tokens', '/v1/runs', '/v1/switches', '/v1/limits', '/v1/webhooks'];

/** What {@link authenticate} needs: token verification, and the group-signature inputs. */
export interface AuthDeps {
  tokens: Pick<TokenService, 'verify'>;
  keys: Pick<KeyStore, 'lookup'>;
  clock: Clock;
  config: { clockSkewS: number };
  /** The read model's refresh, run before a request is authenticated (`app/read-model.ts`); none on SQLite. */
  readModel?: ReadModel;
}

const BEARER_RE = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/;

/**
 * Hono middleware: with `Authorization: Bearer <JWT>` it verifies the token and sets `principal`
 * to `{type: 'token', role, subject}`; without an `Authorization` header it falls back to the
 * RFC 9421 group signature (`{type: 'group', …}`). Either way `rawBody` and `bodySha256` are set
 * (`bodySha256` is null for tokens: no `Content-Digest` is checked), and body methods need a
 * valid `Idempotency-Key` (for bearer requests too: safe retries).
 * @throws ApiError 401 `unauthorized` (another scheme, a malformed, expired, revoked or foreign token,
 *   with `WWW-Authenticate`), 403 `forbidden` (a token outside {@link TOKEN_ROUTE_PREFIXES}),
 *   400 `idempotency_key_missing`, and the signature middleware's 401 codes with their
 *   `WWW-Authenticate: Signature …` challenge and `Accept-Signature`, to which a path a token may
 *   use adds the `Bearer` challenge.
 */
export function authenticate(deps: AuthDeps): MiddlewareHandler<AppEnv> {
  const signed = requireGroupSignature({ keys: deps.keys, clock: deps.clock, clockSkewS: deps.config.clockSkewS });
  const bearer = async (c: Context<AppEnv>, next: Next, authorization: string) => {
    const match = BEARER_RE.exec(authorization.trim());
    if (!match) {
      throw new ApiError('unauthorized', 'Authorization must be "Bearer <token>"; agent groups sign requests (RFC 9421) instead.', {}, wwwAuthenticate('invalid_request'));
    }
    const claims = await deps.tokens.verify(match[1]!);
    if (!isTokenPath(c.req.path)) {
      throw new ApiError('forbidden', `An ${claims.role} token cannot use ${c.req.path}; it serves grants, calls, runs, kill switches, limits, webhook deliveries, token revocations and the audit trail.`);
    }
    c.set('rawBody', await readRawBody(c));
    c.set('bodySha256', null);
    if (BODY_METHODS.has(c.req.method.toUpperCase())) {
      const key = c.req.header('idempotency-key');
      if (key === undefined || !IDEMPOTENCY_KEY_RE.test(key)) {
        throw new ApiError('idempotency_key_missing', 'A request with a body needs an Idempotency-Key of 1–255 characters of [A-Za-z0-9._:-].');
      }
      c.set('idempotencyKey', key);
    }
    c.set('principal', { type: 'token', role: claims.role, subject: claims.subject });
    await next();
  };
  // On a path a token may use, a signature 401 also offers the Bearer challenge (RFC 6750 §3).
  const signedOrBearer: MiddlewareHandler<AppEnv> = async (c, next) => {
    try {
      await signed(c, next);
    } catch (err) {
      throw err instanceof ApiError && err.headers['WWW-Authenticate']?.startsWith('Signature ')
        ? new ApiError(err.code, err.detail, err.extensions, { ...err.headers, 'WWW-Authenticate': `${err.headers['WWW-Authenticate']}, ${wwwAuthenticate()['WWW-Authenticate']}` })
        : err;
    }
  };
  // Not an async function: a signed request to an agent route goes straight to the signature
  // middleware, without an extra promise wrapped around its own.
  const dispatch: MiddlewareHandler<AppEnv> = (c, next) => {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) return bearer(c, next, authorization);
    return isTokenPath(c.req.path) ? signedOrBearer(c, next) : signed(c, next);
  };
  // The read model is refreshed before the signature is checked (its key lookup reads it), and
  // the decision reads it after; on SQLite the refresh returns nothing and nothing is awaited.
  return (c, next) => {
    const pending = deps.readModel?.refresh();
    return pending ? pending.then(() => dispatch(c, next)) : dispatch(c, next);
  };
}

/** True for a path under {@link TOKEN_ROUTE_PREFIXES}. */
function isTokenPath(path: string): boolean {
  return TOKEN_ROUTE_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));
}
