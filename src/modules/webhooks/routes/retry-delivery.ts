import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { principalName, requireRole } from '../../../platform/http/guard.js';
import { DELIVERY_RETRIERS } from '../access.js';
import { retryDelivery, type WebhookDeps } from '../service.js';
import { DeliveryIdParams, DeliverySchema } from './schemas.js';

/**
 * `POST /v1/webhooks/deliveries/{id}/retry` (operators, no body): a delivery not yet delivered is
 * due again now with its attempts reset, audited `webhook.delivery_retried`. 404 `not_found`;
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
      request: { params: DeliveryIdParams },
      responses: { 200: json('The delivery, pending and due now.', DeliverySchema), ...problems('not_found', 'conflict', 'audit_unavailable') },
    }),
    guard: requireRole(...DELIVERY_RETRIERS),
    handler: async (c) => c.json(await retryDelivery(deps, c.req.param('id')!, principalName(c.get('principal')))),
  };
}
