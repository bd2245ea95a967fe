import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * `webhook_deliveries`: one row per (endpoint, event), made by the webhook fan-out from the audit
 * outbox in the transaction that advances its cursor, then sent (and re-sent with backoff) by the
 * delivery worker. `UNIQUE(endpoint_id, event_id)` makes the fan-out idempotent: replaying a
 * batch inserts nothing twice. Times are Unix ms.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    /** `whd_<ULID>`. */
    id: text('id').primaryKey(),
    /** The endpoint's `id` in `policies/webhooks.json`. */
    endpointId: text('endpoint_id').notNull(),
    /** `evt_<audit seq>`: the Standard Webhooks `webhook-id`, the same on every attempt, so receivers de-duplicate. */
    eventId: text('event_id').notNull(),
    /** The event type (`grant.activated`, …). */
    eventType: text('event_type').notNull(),
    /** The audit row the event comes from. */
    seq: integer('seq').notNull(),
    /** The JSON body sent, `{type, timestamp, data}`, fixed at fan-out. */
    payload: text('payload').notNull(),
    /** `pending` | `delivered` | `failed`. */
    status: text('status').notNull(),
    /** Attempts made so far. */
    attempts: integer('attempts').notNull(),
    /** When the worker may (re)send it; a worker sending it pushes this forward as its claim. */
    nextAttemptAt: integer('next_attempt_at').notNull(),
    lastAttemptAt: integer('last_attempt_at'),
    /** The HTTP status of the last attempt, null when no response came. */
    lastStatus: integer('last_status'),
    /** Why the last attempt failed (no secret, no body). */
    lastError: text('last_error'),
    createdAt: integer('created_at').notNull(),
    deliveredAt: integer('delivered_at'),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_event_idx').on(t.endpointId, t.eventId),
    index('webhook_deliveries_due_idx').on(t.status, t.nextAttemptAt),
  ],
);
