import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `grants`: capability grants, written through `store.ts`. Times are Unix ms.
 *
 * The stored `status` is one of `pending_approval`, `active`, `rejected`, `revoked`; `expired` is
 * derived from the clock (`expires_at` for active grants, `pending_expires_at` for pending ones),
 * so a grant stops working at its exact instant without any sweeper. Every insert, update or
 * delete is logged in `grant_changes` by triggers (`drizzle/*_grant_changes_triggers.sql`), which
 * the in-memory grant index of the decision path (`source.ts`) reads per lookup to notice changes
 * made by any connection.
 */
export const grants = sqliteTable(
  'grants',
  {
    /** `grt_<ULID>`. */
    id: text('id').primaryKey(),
    group: text('group').notNull(),
    provider: text('provider').notNull(),
    /** 1–3. */
    level: integer('level').notNull(),
    /** JSON array of action patterns, or null = every action of the provider at or below `level`. */
    allowedActions: text('allowed_actions'),
    /** JSON array of action patterns, or null = none denied. */
    deniedActions: text('denied_actions'),
    /** JSON array of resource patterns, or null = any resource. */
    resources: text('resources'),
    reason: text('reason').notNull(),
    /** The principal that created it: a group (`main`) or `operator:<subject>`. */
    requestedBy: text('requested_by').notNull(),
    /** pending_approval | active | rejected | revoked (expired is derived). */
    status: text('status').notNull(),
    /** Requested lifetime after activation, in seconds; null when `requested_expires_at` or no expiry. */
    ttlS: integer('ttl_s'),
    /** Requested absolute expiry (Unix ms); null when `ttl_s` or no expiry. */
    requestedExpiresAt: integer('requested_expires_at'),
    /** sha256 hex of the RFC 8785 canonical terms; approvals sign it. */
    digest: text('digest').notNull(),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    activatedAt: integer('activated_at'),
    /** The exact instant it stops working; null = no expiry (L1 only). */
    expiresAt: integer('expires_at'),
    /** L3 only: when a grant still pending approval expires. */
    pendingExpiresAt: integer('pending_expires_at'),
    /** When a signed denial rejected it. */
    rejectedAt: integer('rejected_at'),
    revokedAt: integer('revoked_at'),
    revokedBy: text('revoked_by'),
    revokeReason: text('revoke_reason'),
    /** The creating request's Idempotency-Key and the sha256 of its body (replays return this grant). */
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

/**
 * `grant_approvals`: signed L3 decisions (compact EdDSA JWS, kept verbatim for non-repudiation).
 * An approval counts only while `grant_digest` equals the grant's current `digest`.
 */
export const grantApprovals = sqliteTable(
  'grant_approvals',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    grantId: text('grant_id')
      .notNull()
      .references(() => grants.id),
    approverId: text('approver_id').notNull(),
    approverGroup: text('approver_group').notNull(),
    /** approve | deny */
    decision: text('decision').notNull(),
    grantDigest: text('grant_digest').notNull(),
    jws: text('jws').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [uniqueIndex('grant_approvals_once_idx').on(t.grantId, t.grantDigest, t.approverId)],
);

/**
 * `approvers`: approvers registered with `broker approvers add` (those in
 * `policies/approvers.json` are read from the file). `public_jwk` is an Ed25519 OKP public JWK.
 */
export const approvers = sqliteTable('approvers', {
  id: text('id').primaryKey(),
  group: text('group').notNull(),
  publicJwk: text('public_jwk').notNull(),
  /** RFC 7638 JWK thumbprint (sha256), for display. */
  thumbprint: text('thumbprint').notNull(),
  addedBy: text('added_by').notNull(),
  createdAt: integer('created_at').notNull(),
});

/**
 * `grant_renewals`: each extension of an active grant's expiry (`POST /v1/grants/{id}/renew`). An
 * L1/L2 renewal is `applied` at once; an L3 renewal waits `pending_approval` (the grant keeps its old
 * expiry) until two approvals sign `digest` (the terms with the new expiry), then is `applied`; a
 * newer renewal marks an older pending one `superseded`. Times are Unix ms.
 */
export const grantRenewals = sqliteTable(
  'grant_renewals',
  {
    /** `rnw_<ULID>`. */
    id: text('id').primaryKey(),
    grantId: text('grant_id')
      .notNull()
      .references(() => grants.id),
    /** The principal that asked (`operator:<subject>`, `main`). */
    requestedBy: text('requested_by').notNull(),
    reason: text('reason').notNull(),
    /** The grant's expiry when the renewal was asked. */
    previousExpiresAt: integer('previous_expires_at'),
    /** The new expiry (absolute). */
    expiresAt: integer('expires_at').notNull(),
    /** sha256 of the grant's terms with `expires_at` as their expiry: what L3 approvers sign. */
    digest: text('digest').notNull(),
    /** applied | pending_approval | superseded (a pending one past `pending_expires_at` reads expired). */
    status: text('status').notNull(),
    createdAt: integer('created_at').notNull(),
    /** L3 only: until when the renewal waits for its approvals. */
    pendingExpiresAt: integer('pending_expires_at'),
    appliedAt: integer('applied_at'),
    /** The request's Idempotency-Key and the sha256 of its body (replays answer this renewal). */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('grant_renewals_grant_idx').on(t.grantId),
    uniqueIndex('grant_renewals_idempotency_idx').on(t.requestedBy, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);

/**
 * `grant_changes`: which grant changed, in commit order. Triggers on `grants` and
 * `grant_approvals` append a row per changed grant (and keep only the last 1000), so the
 * in-memory grant index (`source.ts`) reads `MAX(seq)` per lookup and reloads only the grants that
 * changed, from any connection or process. A reader that fell more than 1000 changes behind
 * reloads everything.
 */
export const grantChanges = sqliteTable('grant_changes', {
  seq: integer('seq').primaryKey({ autoIncrement: true }),
  grantId: text('grant_id').notNull(),
});
