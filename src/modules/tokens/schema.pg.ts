import { sql } from 'drizzle-orm';
import { bigint, check, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `token_revocations` (`schema.ts`): append-only (UPDATE, DELETE and TRUNCATE
 * are refused by triggers in the baseline migration of `drizzle-pg/`); each row names exactly one
 * target, a `jti` or a `subject` (and optionally `role`). `issued_before` is Unix s; `revoked_at` ms.
 */
export const tokenRevocations = pgTable(
  'token_revocations',
  {
    id: text('id').primaryKey(),
    jti: text('jti'),
    subject: text('subject'),
    role: text('role'),
    issuedBefore: bigint('issued_before', { mode: 'number' }),
    revokedAt: bigint('revoked_at', { mode: 'number' }).notNull(),
    revokedBy: text('revoked_by').notNull(),
    reason: text('reason').notNull(),
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
 * PostgreSQL mirror of `token_keys`: the public halves of every Ed25519 key that signed bearer
 * tokens, by `kid`. Rows are never deleted, a key can be retired once (`retired_at`,
 * `verify_until`) and nothing else changes (triggers in the baseline migration). Times are Unix ms;
 * `public_jwk` and `rotation` are JSON text.
 */
export const tokenKeys = pgTable(
  'token_keys',
  {
    kid: text('kid').primaryKey(),
    publicJwk: text('public_jwk').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    retiredAt: bigint('retired_at', { mode: 'number' }),
    verifyUntil: bigint('verify_until', { mode: 'number' }),
    rotation: text('rotation'),
  },
  () => [
    check('token_keys_retired_pair', sql`(retired_at IS NULL) = (verify_until IS NULL)`),
    check('token_keys_grace', sql`verify_until IS NULL OR verify_until >= retired_at`),
  ],
);
