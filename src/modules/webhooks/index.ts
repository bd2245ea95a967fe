import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { listDeliveriesOp } from './routes/list-deliveries.js';
import { retryDeliveryOp } from './routes/retry-delivery.js';
import type { WebhookDeps } from './service.js';

/** The `/v1/webhooks` routes: operators and auditors list deliveries; operators retry one. */
export function webhookRoutes(deps: WebhookDeps): Router {
  return mount(createRouter(), listDeliveriesOp(deps), retryDeliveryOp(deps));
}
