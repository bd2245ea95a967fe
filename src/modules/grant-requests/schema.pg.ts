import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `grant_requests` (`schema.ts`): self-service access requests. Action and
 * resource patterns are JSON array text. Times are Unix ms; `ttl_s` is seconds.
 */
export const grantRequests = pgTable(
  'grant_requests',
  {
    id: text('id').primaryKey(),
    group: text('group').notNull(),
    provider: text('provider').notNull(),
    level: integer('level').notNull(),
    allowedActions: text('allowed_actions'),
    deniedActions: text('denied_actions'),
    resources: text('resources'),
    ttlS: bigint('ttl_s', { mode: 'number' }).notNull(),
    justification: text('justification').notNull(),
    renews: text('renews'),
    /** The grant this request asks to extend in place (`grt_…`; approval renews it, no new grant), or null. */
    renewalOf: text('renewal_of'),
    status: text('status').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
    pendingExpiresAt: bigint('pending_expires_at', { mode: 'number' }).notNull(),
    decidedBy: text('decided_by'),
    decidedAt: bigint('decided_at', { mode: 'number' }),
    decisionReason: text('decision_reason'),
    grantId: text('grant_id'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (t) => [
    index('grant_requests_group_idx').on(t.group),
    index('grant_requests_status_idx').on(t.status, t.pendingExpiresAt),
    uniqueIndex('grant_requests_idempotency_idx').on(t.group, t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  ],
);
