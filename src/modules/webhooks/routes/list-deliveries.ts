import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { pageOf, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { DELIVERY_READERS } from '../access.js';
import { deliveryJson, type WebhookDeps } from '../service.js';
import { DELIVERY_STATUSES, DeliveryId, DeliverySchema } from './schemas.js';

const ListDeliveriesQuery = z.strictObject({
  status: z.enum(DELIVERY_STATUSES).optional(),
  endpoint: z.string().min(1).max(64).optional().describe('An endpoint id of policies/webhooks.json.'),
  ...pageQuery(200, 50, DeliveryId),
});

/**
 * `GET /v1/webhooks/deliveries?status=&endpoint=&limit=&cursor=` (operators, auditors): webhook
 * deliveries in creation order, `{data: WebhookDelivery[], has_more, next_cursor}`. 422 `validation_failed`.
 */
export function listDeliveriesOp(deps: WebhookDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/webhooks/deliveries',
      operationId: 'listWebhookDeliveries',
      tags: ['webhooks'],
      summary: 'List webhook deliveries',
      security: [BEARER],
      request: { query: ListDeliveriesQuery },
      responses: { 200: json('A page of deliveries, oldest first.', pageOf(DeliverySchema)), ...problems('validation_failed') },
    }),
    guard: requireRole(...DELIVERY_READERS),
    handler: async (c) => {
      const q = queryParams(c, ListDeliveriesQuery);
      const { rows, more } = await deps.stores.webhooks.list({ limit: q.limit, ...(q.status ? { status: q.status } : {}), ...(q.endpoint ? { endpoint: q.endpoint } : {}), ...(q.cursor ? { after: q.cursor } : {}) });
      return c.json({ data: rows.map(deliveryJson), has_more: more, next_cursor: more ? rows.at(-1)!.id : null });
    },
  };
}
