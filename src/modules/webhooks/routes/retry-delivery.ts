import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requireRole } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { DELIVERY_RETRIERS } from '../access.js';
import { retryDelivery, type WebhookDeps } from '../service.js';
import { DeliveryIdParams, DeliverySchema } from './schemas.js';

/** The body of a retry: an optional reason, recorded on the `webhook.delivery_retried` audit row. */
const RetryBody = z.strictObject({ reason: z.string().trim().min(1).max(2000).optional() });

/**
 * `POST /v1/webhooks/deliveries/{id}/retry` `{reason?}` (operators): a delivery not yet delivered
 * is due again now with its attempts reset, audited `webhook.delivery_retried`. 404 `not_found`;
 * 409 `conflict` when it was delivered already.
 */
export function retryDeliveryOp(deps: WebhookDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/webhooks/deliveries/{id}/retry',
      operationId: 'retryWebhookDelivery',
      tags: ['webhooks'],
      summary: 'Retry a webhook delivery',
      security: [BEARER],
      request: { headers: IdempotencyKeyHeader, params: DeliveryIdParams, body: jsonRequest(RetryBody) },
      responses: { 200: json('The delivery, pending and due now.', DeliverySchema), ...problems(...WRITE_ERRORS, 'not_found', 'conflict') },
    }),
    guard: requireRole(...DELIVERY_RETRIERS),
    handler: async (c) => {
      const body = await jsonBody(c, RetryBody);
      return c.json(await retryDelivery(deps, c.req.param('id')!, principalName(c.get('principal')), body.reason ?? null));
    },
  };
}
