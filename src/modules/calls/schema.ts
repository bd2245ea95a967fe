import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `ext_calls`: one row per claimed external call (decision steps 13–14). The primary key
 * (group, request_id) is the idempotency key and the inflight lock: a second claim of the same key
 * fails, so a call executes at most once under any concurrency and across restarts.
 * Denials (steps 4–12) write no row, so they never use up a key. Finished rows older than
 * `BROKER_CALL_RETENTION` (default 30 days, at least the 7 days the README promises) are purged
 * (`retention.ts`); a purged key is new again. Times are Unix ms.
 */
export const extCalls = sqliteTable(
  'ext_calls',
  {
    group: text('group').notNull(),
    /** The request's Idempotency-Key. */
    requestId: text('request_id').notNull(),
    /** sha256 hex of the raw request body; the same key with another body is refused. */
    fingerprint: text('fingerprint').notNull(),
    action: text('action').notNull(),
    level: integer('level').notNull(),
    /** What the action touches (`owner/repo`, a GCP project). */
    resource: text('resource').notNull(),
    /** `action.summarize(params)`: short, no secrets. */
    summary: text('summary').notNull(),
    taskId: text('task_id'),
    /** The grant that allowed the call. */
    grantId: text('grant_id').notNull(),
    /** running | succeeded | failed | timed_out | unknown_outcome */
    status: text('status').notNull(),
    /** The HTTP status answered (and replayed); null while running. */
    httpStatus: integer('http_status'),
    /** The exact JSON body answered (and replayed); null while running. */
    response: text('response'),
    /** The decision receipt at the claim (JSON, steps 1–13); the final one, with the execution step, is `response.receipt`. */
    receipt: text('receipt').notNull(),
    /** Provider attempts made (idempotent actions are retried at most twice). */
    attempts: integer('attempts').notNull().default(0),
    createdAt: integer('created_at').notNull(),
    finishedAt: integer('finished_at'),
    durationMs: integer('duration_ms'),
    /**
     * The `broker_instances` id of the process that claimed the call: only that process ends it,
     * and crash recovery takes it over only once that process's lease has expired. Null on rows
     * claimed before instances had leases (recovered like those of an expired lease).
     */
    instanceId: text('instance_id'),
  },
  (t) => [
    primaryKey({ name: 'ext_calls_pk', columns: [t.group, t.requestId] }),
    index('ext_calls_status_idx').on(t.status, t.createdAt),
    index('ext_calls_task_idx').on(t.taskId, t.createdAt).where(sql`task_id IS NOT NULL`),
  ],
);

/**
 * `call_holds`: the calls held for per-call approval (`policies/approvals.json`): the exact request
 * (`body`, its raw JSON) and the digest approvers sign, until `expires_at`. Their `ext_calls` row
 * has status `awaiting_approval` until two approvals run them. Times are Unix ms.
 */
export const callHolds = sqliteTable(
  'call_holds',
  {
    group: text('group').notNull(),
    requestId: text('request_id').notNull(),
    /** sha256 hex of the canonical request (method, action, params, resources, group, request id, task). */
    requestDigest: text('request_digest').notNull(),
    /** The raw request body (UTF-8 JSON), re-read when the call runs. */
    body: text('body').notNull(),
    /** The request approvers sign, as canonical JSON (`approval/request.ts`): its sha256 is `request_digest`. */
    request: text('request').notNull(),
    createdAt: integer('created_at').notNull(),
    /** When the held call expires unexecuted. */
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [primaryKey({ name: 'call_holds_pk', columns: [t.group, t.requestId] }), index('call_holds_expiry_idx').on(t.expiresAt)],
);

/** `call_approvals`: approvers' signed approvals of one held call (compact EdDSA JWS, kept verbatim). */
export const callApprovals = sqliteTable(
  'call_approvals',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    group: text('group').notNull(),
    requestId: text('request_id').notNull(),
    approverId: text('approver_id').notNull(),
    approverGroup: text('approver_group').notNull(),
    requestDigest: text('request_digest').notNull(),
    jws: text('jws').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [uniqueIndex('call_approvals_once_idx').on(t.group, t.requestId, t.approverId)],
);
