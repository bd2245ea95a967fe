/**
 * Operator and auditor bearer tokens: JWTs signed with EdDSA by the broker's own Ed25519 key, checked with jose (`iss`, `aud`, `exp`, `sub`, `role`) against the
 * public key their header `kid` names in `token_keys` (current, or retired and still in its grace).
 */
import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import type { Clock } from '../../platform/clock.js';
import { ApiError } from '../../platform/http/problem.js';
import { generateSigningKey, writeSigningKeyFile, type BrokerSigningKey } from '../../platform/signing-key.js';
import { TokenKeys, type KnownTokenKey } from './keys.js';
import { TokenRevocations } from './revocations.js';
import type { TokenStore } from './store.js';
import { ROLES, Subject, type Role } from './types.js';

/** What the token routes run on. */
export interface TokensDeps {
  tokens: TokenService;
}

/** `iss` of every broker token. */
export const TOKEN_ISSUER = 'nanoclaw-broker';
/** `aud` of every broker token (a token for another service is refused). */
export const TOKEN_AUDIENCE = 'nanoclaw-broker';
/** The longest token lifetime `mint` accepts, in seconds (30 days). */
export const MAX_TOKEN_TTL_S = 30 * 24 * 3600;

/** What a verified token says. `issuedAt` and `expiresAt` are Unix ms (whole seconds). */
export interface TokenClaims {
  role: Role;
  subject: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * What {@link TokenService.rotateSigningKey} did: the key it replaced, the new key, and until when
 * (RFC 3339 UTC, exclusive) tokens signed by the old key still verify.
 */
export interface KeyRotation {
  old_kid: string;
  new_kid: string;
  old_verifies_until: string;
}

const Claims = z.object({ role: z.enum(ROLES), sub: Subject, jti: z.string().min(1), iat: z.number().int(), exp: z.number().int() });

/**
 * Mints and verifies bearer tokens against the clock (`iat`/`exp` come from it, never `Date.now`).
 * `revocations` (`token_revocations`) and `keys` (`token_keys`) work over `store` and are both
 * asked on every {@link TokenService.verify}. Minting uses the private key this process loaded
 * from `token.key` (or the one its own {@link TokenService.rotateSigningKey} made).
 */
export class TokenService {
  /** Revoking tokens, and the revocation check of every verification. */
  readonly revocations: TokenRevocations;
  /** The registry of token-signing public keys. */
  readonly keys: TokenKeys;

  constructor(
    private key: BrokerSigningKey,
    private readonly clock: Clock,
    private readonly store: TokenStore,
  ) {
    this.revocations = new TokenRevocations(store);
    this.keys = new TokenKeys(store);
  }

  /** The `kid` new tokens are signed with (the key in `token.key` as this process knows it). */
  get kid(): string {
    return this.key.kid;
  }

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
   * Mints a token ({@link TokenService.mint}) and audits it as `token.issued` by `actor` (subject
   * `<role>:<subject>`; detail: role, subject, jti, expiry; never the token).
   * @throws RangeError as {@link TokenService.mint}; ApiError 503 `audit_unavailable` (the token
   *   is then not handed out).
   */
  async issue(role: Role, subject: string, ttlS: number, actor: string): Promise<{ token: string; claims: TokenClaims }> {
    const minted = await this.mint(role, subject, ttlS);
    const { claims } = minted;
    await this.store.audit([
      {
        actor,
        kind: 'token.issued',
        subject: `${claims.role}:${claims.subject}`,
        detail: { role: claims.role, subject: claims.subject, jti: claims.jti, expires_at: new Date(claims.expiresAt).toISOString() },
      },
    ]);
    return minted;
  }

  /**
   * Verifies a compact JWT: EdDSA with the key its header `kid` names in `token_keys` (every
   * token `mint` has ever signed carries one; a token without is refused), which must be current
   * or retired with clock now < its `verify_until` (read from the database on every call), `typ` JWT, `iss`/`aud`, not
   * expired at the clock's now (no tolerance: a token stops at its exact `exp` second), a known role, and not
   * revoked (its `jti`, or its subject[/role] up to its `iat`, in `token_revocations`, read from
   * the database on every call).
   * @throws ApiError 401 `unauthorized` naming what failed (never echoing the token), with
   *   `WWW-Authenticate: Bearer …, error="invalid_token"`; 503 `service_unavailable` when the
   *   signing keys or the revocations cannot be read.
   */
  async verify(token: string): Promise<TokenClaims> {
    const key = await this.signingKeyOf(token);
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
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
    const revoked = await this.revocations.find({ jti, subject: sub, role, issuedAtS: iat });
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

  /**
   * The registered key a token's header `kid` names, valid at the clock's now.
   * @throws ApiError 401 (malformed header, no `kid`, unknown kid, retired past `verify_until`); 503.
   */
  private async signingKeyOf(token: string): Promise<KnownTokenKey> {
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch (err) {
      throw new ApiError('unauthorized', tokenProblem(err), {}, wwwAuthenticate('invalid_token'));
    }
    if (typeof kid !== 'string') throw new ApiError('unauthorized', 'The bearer token names no signing key (`kid`); mint a new one with `broker token`.', {}, wwwAuthenticate('invalid_token'));
    const key = await this.keys.lookup(kid);
    if (!key || (key.verifyUntil !== null && this.clock.now() >= key.verifyUntil)) {
      throw new ApiError('unauthorized', 'The bearer token\'s signing key is unknown or retired; mint a new one with `broker token`.', {}, wwwAuthenticate('invalid_token'));
    }
    return key;
  }

  /**
   * Replaces the signing key with a new Ed25519 key, keeping the old one verifiable for `graceMs`.
   * The order makes a crash at any point safe:
   * 1. the new public key is registered in `token_keys` with this rotation's intent (old kid,
   *    grace, reason, actor) and audited `token.key_registered` (harmless while nothing signs
   *    with it);
   * 2. `token.key` is replaced atomically (temp file 0600, fsync, rename): from here on every
   *    process that loads it mints with the new key, which every verifier already knows;
   * 3. in one transaction, every other current key is retired (`retired_at` = now,
   *    `verify_until` = now + `graceMs`) and `token.key_rotated` is audited (no key material).
   * A crash before 2 leaves an unused current key, which the next rotation retires. A crash
   * between 2 and 3 leaves the old key current until the next start of any broker process, which
   * finishes step 3 from the stored intent (`TokenKeys.finishInterruptedRotation`). Afterwards
   * this process mints with the new key.
   * @param graceMs ms tokens signed by the old key keep verifying; 0 stops them at once.
   * @param actor who rotates, `operator:<name>`.
   * @throws RangeError when `graceMs` is not a whole number >= 0; the fs or SQLite error of a
   *   failed step (the key file is untouched before step 2);
   *   Error when another rotation replaced `token.key` meanwhile; ApiError 503 `audit_unavailable`.
   */
  async rotateSigningKey(graceMs: number, reason: string, actor: string): Promise<KeyRotation> {
    if (!Number.isInteger(graceMs) || graceMs < 0) throw new RangeError('grace must be a whole number of ms, at least 0');
    const old = this.key;
    const next = generateSigningKey(old.path);
    await this.keys.register(next, { old_kid: old.kid, grace_ms: graceMs, reason, actor });
    writeSigningKeyFile(next);
    this.key = next;
    const { verifyUntil } = await this.keys.retireAllBut(next, graceMs, reason, actor);
    return { old_kid: old.kid, new_kid: next.kid, old_verifies_until: new Date(verifyUntil).toISOString() };
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
