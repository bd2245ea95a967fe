import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `grant_requests`: self-service access requests, written through `store.ts`. An agent group asks
 * for terms (or to renew one of its grants); an operator approves (the grants service then creates
 * the grant, linked in `grant_id`) or denies it. A request grants nothing by itself. Times are
 * Unix ms.
 *
 * The stored `status` is `pending`, `approved`, `denied` or `expired`; a `pending` row past
 * `pending_expires_at` reads `expired` from that instant (derived from the clock, so exact without
 * a sweeper; `broker serve` also stores it and audits `grant_request.expired`).
 */
export const grantRequests = sqliteTable(
  'grant_requests',
  {
    /** `grq_<ULID>`. */
    id: text('id').primaryKey(),
    /** The requesting agent group (the signer of the request). */
    group: text('group').notNull(),
    provider: text('provider').notNull(),
    /** 1–3. */
    level: integer('level').notNull(),
    /** JSON array of action patterns, or null = every action of the provider at or below `level` (renewals only). */
    allowedActions: text('allowed_actions'),
    /** JSON array of action patterns, or null (renewals copy the renewed grant's). */
    deniedActions: text('denied_actions'),
    /** JSON array of resource patterns, or null = any resource (renewals only). */
    resources: text('resources'),
    /** The grant's requested lifetime after activation, in seconds. */
    ttlS: integer('ttl_s').notNull(),
    justification: text('justification').notNull(),
    /** The grant this request renews (`grt_…`), or null for a new capability. */
    renews: text('renews'),
    /** The grant this request asks to extend in place (`grt_…`; approval renews it, no new grant), or null. */
    renewalOf: text('renewal_of'),
    /** pending | approved | denied | expired (a pending row past `pending_expires_at` reads expired). */
    status: text('status').notNull(),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    /** When the request expires if nobody decides (`BROKER_GRANT_REQUEST_TTL_S` after creation). */
    pendingExpiresAt: integer('pending_expires_at').notNull(),
    /** The principal that approved or denied it (`operator:<subject>`, `main`). */
    decidedBy: text('decided_by'),
    decidedAt: integer('decided_at'),
    /** The reason given with the decision (required to deny). */
    decisionReason: text('decision_reason'),
    /** The grant the approval created (`grt_…`); null until it exists. */
    grantId: text('grant_id'),
    /** The creating request's Idempotency-Key and the sha256 of its body (replays return this request). */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('grant_requests_group_idx').on(t.group),
    index('grant_requests_status_idx').on(t.status, t.pendingExpiresAt),
    uniqueIndex('grant_requests_idempotency_idx').on(t.group, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);
