import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * PostgreSQL mirror of `ext_calls` (`schema.ts`): one row per claimed external call. The primary
 * key (group, request_id) is the idempotency key and the inflight lock on every replica: of two
 * concurrent claims of one key, the second waits for the first's transaction and then fails with a
 * unique violation (or, with `ON CONFLICT DO NOTHING`, inserts nothing). `response` and `receipt`
 * are JSON text, replayed byte for byte. Times are Unix ms.
 */
export const extCalls = pgTable(
  'ext_calls',
  {
    group: text('group').notNull(),
    requestId: text('request_id').notNull(),
    fingerprint: text('fingerprint').notNull(),
    action: text('action').notNull(),
    level: integer('level').notNull(),
    resource: text('resource').notNull(),
    summary: text('summary').notNull(),
    taskId: text('task_id'),
    grantId: text('grant_id').notNull(),
    /** running | succeeded | failed | timed_out | unknown_outcome */
    status: text('status').notNull(),
    httpStatus: integer('http_status'),
    response: text('response'),
    receipt: text('receipt').notNull(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    finishedAt: bigint('finished_at', { mode: 'number' }),
    durationMs: bigint('duration_ms', { mode: 'number' }),
    /** The `broker_instances` id of the replica that claimed the call (crash recovery by ownership). */
    instanceId: text('instance_id'),
  },
  (t) => [
    primaryKey({ name: 'ext_calls_pk', columns: [t.group, t.requestId] }),
    index('ext_calls_status_idx').on(t.status, t.createdAt),
    index('ext_calls_task_idx').on(t.taskId, t.createdAt).where(sql`task_id IS NOT NULL`),
  ],
);

/** PostgreSQL mirror of `call_holds` (`schema.ts`): calls held for per-call approval. Times are Unix ms. */
export const callHolds = pgTable(
  'call_holds',
  {
    group: text('group').notNull(),
    requestId: text('request_id').notNull(),
    requestDigest: text('request_digest').notNull(),
    body: text('body').notNull(),
    request: text('request').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ name: 'call_holds_pk', columns: [t.group, t.requestId] }), index('call_holds_expiry_idx').on(t.expiresAt)],
);

/** PostgreSQL mirror of `call_approvals` (`schema.ts`). */
export const callApprovals = pgTable(
  'call_approvals',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    group: text('group').notNull(),
    requestId: text('request_id').notNull(),
    approverId: text('approver_id').notNull(),
    approverGroup: text('approver_group').notNull(),
    requestDigest: text('request_digest').notNull(),
    jws: text('jws').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('call_approvals_once_idx').on(t.group, t.requestId, t.approverId)],
);
