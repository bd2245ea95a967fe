import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

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
