/**
 * Operator and auditor bearer tokens (issue 4, "Routes and people"): JWTs signed with EdDSA by the
 * broker's own Ed25519 key, checked with jose (`iss`, `aud`, `exp`, `sub`, `role`).
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { ApiError } from '../http/problem.js';
import type { BrokerSigningKey } from './keys.js';
import type { TokenRevocations } from './revocations.js';

/** `iss` of every broker token. */
export const TOKEN_ISSUER = 'nanoclaw-broker';
/** `aud` of every broker token (a token for another service is refused). */
export const TOKEN_AUDIENCE = 'nanoclaw-broker';
/** The longest token lifetime `mint` accepts, in seconds (30 days). */
export const MAX_TOKEN_TTL_S = 30 * 24 * 3600;

/** Token roles: operators manage grants; auditors read grants, calls and the audit trail. */
export const ROLES = ['operator', 'auditor'] as const;
/** A bearer token's role. */
export type Role = (typeof ROLES)[number];

/** Token subjects (who holds it): 1–128 of `[A-Za-z0-9._@-]`. */
export const Subject = z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'subjects are 1–128 of [A-Za-z0-9._@-]');

/** What a verified token says. `issuedAt` and `expiresAt` are Unix ms (whole seconds). */
export interface TokenClaims {
  role: Role;
  subject: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

const Claims = z.object({ role: z.enum(ROLES), sub: Subject, jti: z.string().min(1), iat: z.number().int(), exp: z.number().int() });

/**
 * Mints and verifies bearer tokens against the clock (`iat`/`exp` come from it, never `Date.now`).
 * `revocations` is the database's `token_revocations`, asked on every {@link TokenService.verify}.
 */
export class TokenService {
  constructor(
    private readonly key: BrokerSigningKey,
    private readonly clock: Clock,
    readonly revocations: TokenRevocations,
  ) {}

  /**
   * Signs a token: header `{alg: EdDSA, typ: JWT, kid}`, claims `{role, sub, iss, aud, iat, exp, jti}`.
   * @param ttlS lifetime in seconds, 1…{@link MAX_TOKEN_TTL_S}.
   * @returns the compact JWT and its claims. The token is a credential: never log or audit it.
   * @throws RangeError when `ttlS` is out of range or the subject is invalid.
   */
  async mint(role: Role, subject: string, ttlS: number): Promise<{ token: string; claims: TokenClaims }> {
    if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_TOKEN_TTL_S) throw new RangeError(`ttl must be 1 s … ${MAX_TOKEN_TTL_S} s`);
    if (!Subject.safeParse(subject).success) throw new RangeError('subjects are 1–128 of [A-Za-z0-9._@-]');
    const iat = Math.floor(this.clock.now() / 1000);
    const jti = randomUUID();
    const token = await new SignJWT({ role })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.key.kid })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(subject)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttlS)
      .setJti(jti)
      .sign(this.key.privateKey);
    return { token, claims: { role, subject, jti, issuedAt: iat * 1000, expiresAt: (iat + ttlS) * 1000 } };
  }

  /**
   * Verifies a compact JWT: EdDSA with this broker's key, `typ` JWT, `iss`/`aud`, not expired at
   * the clock's now (no tolerance: a token stops at its exact `exp` second), a known role, and not
   * revoked (its `jti`, or its subject[/role] up to its `iat`, in `token_revocations`, read from
   * the database on every call).
   * @throws ApiError 401 `unauthorized` naming what failed (never echoing the token), with
   *   `WWW-Authenticate: Bearer …, error="invalid_token"`; 503 `service_unavailable` when the
   *   revocations cannot be read.
   */
  async verify(token: string): Promise<TokenClaims> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['EdDSA'],
        typ: 'JWT',
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      }));
    } catch (err) {
      throw new ApiError('unauthorized', tokenProblem(err), {}, wwwAuthenticate('invalid_token'));
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new ApiError('unauthorized', 'The bearer token has no valid role (operator or auditor) or subject.', {}, wwwAuthenticate('invalid_token'));
    const { role, sub, jti, iat, exp } = claims.data;
    const revoked = this.revocations.find({ jti, subject: sub, role, issuedAtS: iat });
    if (revoked) {
      throw new ApiError(
        'unauthorized',
        `The bearer token has been revoked (${revoked.id}, at ${new Date(revoked.revokedAt).toISOString()}); ask an operator for a new one.`,
        {},
        wwwAuthenticate('invalid_token'),
      );
    }
    return { role, subject: sub, jti, issuedAt: iat * 1000, expiresAt: exp * 1000 };
  }
}

/** The RFC 6750 §3 challenge sent with a 401. */
export function wwwAuthenticate(error?: 'invalid_request' | 'invalid_token'): Record<string, string> {
  return { 'WWW-Authenticate': `Bearer realm="${TOKEN_ISSUER}"${error ? `, error="${error}"` : ''}` };
}

function tokenProblem(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The bearer token has expired; mint a new one with `broker token`.';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'The bearer token is not signed by this broker.';
  if (err instanceof errors.JWTClaimValidationFailed) return `The bearer token is not valid here (${err.claim}: ${err.reason}).`;
  return 'The bearer token is malformed or not signed by this broker.';
}
