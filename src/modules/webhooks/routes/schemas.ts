import { z } from 'zod';
import { EVENT_TYPES } from '../policy.js';

/** A delivery id (`whd_<ULID>`). */
export const DeliveryId = z.string().regex(/^whd_[0-9A-HJKMNP-TV-Z]{26}$/);

/** `{id}` of `/v1/webhooks/deliveries/{id}…`. */
export const DeliveryIdParams = z.object({ id: z.string().describe('A webhook delivery id (`whd_<ULID>`).') });

/** The delivery states. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** A webhook delivery (`Delivery`). */
export const DeliverySchema = z
  .strictObject({
    id: z.string(),
    endpoint: z.string().describe('The endpoint id in policies/webhooks.json.'),
    event_id: z.string().describe('`evt_<audit seq>`, sent as `webhook-id`.'),
    type: z.enum(EVENT_TYPES),
    seq: z.number().int().describe('The audit row the event comes from.'),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    next_attempt_at: z.iso.datetime().nullable().describe('When the next attempt is due; null once delivered or failed.'),
    last_attempt_at: z.iso.datetime().nullable(),
    last_status: z.number().int().nullable().describe('HTTP status of the last attempt; null when none came.'),
    last_error: z.string().nullable(),
    created_at: z.iso.datetime(),
    delivered_at: z.iso.datetime().nullable(),
    payload: z.record(z.string(), z.unknown()).describe('The body sent: `{type, timestamp, data}`.'),
  })
  .openapi('WebhookDelivery');
