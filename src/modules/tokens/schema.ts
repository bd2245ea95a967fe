import { sql } from 'drizzle-orm';
import { check, index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `token_revocations`: operator/auditor bearer tokens refused before their `exp`, one row per
 * revocation, append-only (UPDATE and DELETE are refused by triggers, see the migration
 * `drizzle/*_token_revocations_triggers.sql`). Each row names exactly one target:
 * - `jti`: that one token;
 * - `subject` (and optionally `role`): every token of that subject (of that role) whose `iat` is
 *   at or before `issued_before`, i.e. every token minted up to the revocation's second.
 * `TokenService.verify` reads it on every bearer request (see {@link TokenRevocations}).
 */
export const tokenRevocations = sqliteTable(
  'token_revocations',
  {
    /** `rvk_<ULID>`. */
    id: text('id').primaryKey(),
    /** The revoked token's `jti`; null for a subject revocation. */
    jti: text('jti'),
    /** The revoked tokens' `sub`; null for a jti revocation. */
    subject: text('subject'),
    /** operator | auditor, or null = every role of `subject` (always null for a jti revocation). */
    role: text('role'),
    /** Unix s: tokens of `subject` with `iat` <= this are refused. Set exactly for subject revocations. */
    issuedBefore: integer('issued_before'),
    /** Unix ms. */
    revokedAt: integer('revoked_at').notNull(),
    /** Who revoked: `operator:<subject>` (a token or the CLI's OS user). */
    revokedBy: text('revoked_by').notNull(),
    reason: text('reason').notNull(),
    /** The creating HTTP request's Idempotency-Key and the sha256 hex of its body (replays return this row). */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    check(
      'token_revocations_one_target',
      sql`(jti IS NOT NULL AND subject IS NULL AND role IS NULL AND issued_before IS NULL) OR (jti IS NULL AND subject IS NOT NULL AND issued_before IS NOT NULL)`,
    ),
    check('token_revocations_role', sql`role IS NULL OR role IN ('operator', 'auditor')`),
    uniqueIndex('token_revocations_jti_idx').on(t.jti).where(sql`jti IS NOT NULL`),
    index('token_revocations_subject_idx').on(t.subject, t.issuedBefore).where(sql`subject IS NOT NULL`),
    uniqueIndex('token_revocations_idempotency_idx').on(t.revokedBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);

/**
 * `token_keys`: the public halves of every Ed25519 key that has signed bearer tokens, by `kid`
 * (RFC 7638 thumbprint). A row is current while `retired_at` is null; `broker token rotate-key`
 * retires it (`retired_at`, and `verify_until` = retired_at + grace) and tokens it signed verify
 * only before `verify_until`. Rows are never deleted, a retired row can be neither un-retired nor
 * extended, and `rotation` never changes (triggers, see `drizzle/*_token_keys_*trigger*.sql`). The
 * private key lives only in `<dataDir>/token.key`, never here. `TokenService.verify` reads the token's row on every bearer
 * request (see `TokenKeys`).
 */
export const tokenKeys = sqliteTable(
  'token_keys',
  {
    /** RFC 7638 thumbprint of the public key (the JWT header `kid`). */
    kid: text('kid').primaryKey(),
    /** The Ed25519 public JWK `{crv, kty, x}` as JSON (never `d`). */
    publicJwk: text('public_jwk').notNull(),
    /** Unix ms, when the key was first registered. */
    createdAt: integer('created_at').notNull(),
    /** Unix ms, when it was retired; null while current. */
    retiredAt: integer('retired_at'),
    /** Unix ms: tokens signed with it verify while now < this; null while current. */
    verifyUntil: integer('verify_until'),
    /**
     * For a key made by `broker token rotate-key`, the rotation it belongs to, written before
     * `token.key` is replaced, as JSON `{old_kid, grace_ms, reason, actor}` (`RotationIntent`), so
     * a start-up can finish a rotation that stopped after the rename; null for keys found at start.
     */
    rotation: text('rotation'),
  },
  () => [
    check('token_keys_retired_pair', sql`(retired_at IS NULL) = (verify_until IS NULL)`),
    check('token_keys_grace', sql`verify_until IS NULL OR verify_until >= retired_at`),
  ],
);
