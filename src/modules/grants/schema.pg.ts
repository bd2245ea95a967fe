import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `grants` (`schema.ts`): capability grants. Action and resource patterns
 * are JSON array text. Every write is logged in `grant_changes` by triggers (baseline migration in
 * `drizzle-pg/`). Times are Unix ms; `ttl_s` is seconds.
 */
export const grants = pgTable(
  'grants',
  {
    id: text('id').primaryKey(),
    group: text('group').notNull(),
    provider: text('provider').notNull(),
    level: integer('level').notNull(),
    allowedActions: text('allowed_actions'),
    deniedActions: text('denied_actions'),
    resources: text('resources'),
    reason: text('reason').notNull(),
    requestedBy: text('requested_by').notNull(),
    status: text('status').notNull(),
    ttlS: bigint('ttl_s', { mode: 'number' }),
    requestedExpiresAt: bigint('requested_expires_at', { mode: 'number' }),
    digest: text('digest').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
    activatedAt: bigint('activated_at', { mode: 'number' }),
    expiresAt: bigint('expires_at', { mode: 'number' }),
    pendingExpiresAt: bigint('pending_expires_at', { mode: 'number' }),
    rejectedAt: bigint('rejected_at', { mode: 'number' }),
    revokedAt: bigint('revoked_at', { mode: 'number' }),
    revokedBy: text('revoked_by'),
    revokeReason: text('revoke_reason'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('grants_group_provider_idx').on(t.group, t.provider),
    index('grants_status_idx').on(t.status),
    index('grants_activated_idx').on(t.activatedAt),
    uniqueIndex('grants_idempotency_idx').on(t.requestedBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);

/** PostgreSQL mirror of `grant_approvals`: signed L3 decisions (compact EdDSA JWS, verbatim). */
export const grantApprovals = pgTable(
  'grant_approvals',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    grantId: text('grant_id')
      .notNull()
      .references(() => grants.id),
    approverId: text('approver_id').notNull(),
    approverGroup: text('approver_group').notNull(),
    decision: text('decision').notNull(),
    grantDigest: text('grant_digest').notNull(),
    jws: text('jws').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('grant_approvals_once_idx').on(t.grantId, t.grantDigest, t.approverId)],
);

/** PostgreSQL mirror of `approvers`: approvers registered with `broker approvers add`. */
export const approvers = pgTable('approvers', {
  id: text('id').primaryKey(),
  group: text('group').notNull(),
  publicJwk: text('public_jwk').notNull(),
  thumbprint: text('thumbprint').notNull(),
  addedBy: text('added_by').notNull(),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
});

/**
 * PostgreSQL mirror of `grant_changes`: which grant changed, in commit order. A sequence alone
 * would not give commit order on PostgreSQL (two transactions may commit in the other order than
 * they drew their numbers, and a reader of `MAX(seq)` would skip the later-committing one), so the
 * triggers that write it first take a transaction-level advisory lock (`PG_LOCKS.grantChanges`):
 * grant writers are serialised, and `seq` order is commit order, as on SQLite.
 */
export const grantChanges = pgTable('grant_changes', {
  seq: bigint('seq', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  grantId: text('grant_id').notNull(),
});

/** PostgreSQL mirror of `grant_renewals` (`schema.ts`): extensions of active grants. Times are Unix ms. */
export const grantRenewals = pgTable(
  'grant_renewals',
  {
    id: text('id').primaryKey(),
    grantId: text('grant_id')
      .notNull()
      .references(() => grants.id),
    requestedBy: text('requested_by').notNull(),
    reason: text('reason').notNull(),
    previousExpiresAt: bigint('previous_expires_at', { mode: 'number' }),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
    digest: text('digest').notNull(),
    status: text('status').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    pendingExpiresAt: bigint('pending_expires_at', { mode: 'number' }),
    appliedAt: bigint('applied_at', { mode: 'number' }),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('grant_renewals_grant_idx').on(t.grantId),
    uniqueIndex('grant_renewals_idempotency_idx').on(t.requestedBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);
