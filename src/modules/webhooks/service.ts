/**
 * Webhook notifications (docs/notifications.md): the deliveries as the API shows them, an
 * operator's retry, and the loops `broker serve` runs when `policies/webhooks.json` names
 * endpoints: the outbox fan-out (`fanout.ts`), the delivery worker (`delivery.ts`), the check for
 * grants nearing expiry (`expiring.ts`), and their metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../platform/clock.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { startOutboxConsumer, trackOutboxLag } from '../../platform/outbox/consumer.js';
import type { OutboxStore } from '../../platform/outbox/store.js';
import type { GrantStore } from '../grants/store.js';
import { deliverDue } from './delivery.js';
import { checkExpiring } from './expiring.js';
import { fanOut, WEBHOOK_CONSUMER } from './fanout.js';
import type { WebhookPolicy } from './policy.js';
import type { DeliveryRow, DeliveryStatus, WebhookStore } from './store.js';

/** What the webhooks routes and CLI need. */
export interface WebhookDeps {
  clock: Clock;
  stores: { webhooks: WebhookStore };
}

/** A delivery as the API shows it. Times are RFC 3339 UTC. */
export interface Delivery {
  id: string;
  endpoint: string;
  event_id: string;
  type: string;
  seq: number;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  /** The body sent: `{type, timestamp, data}`. */
  payload: Record<string, unknown>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The API view of a row (`next_attempt_at` is null once the delivery is delivered or failed). */
export function deliveryJson(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    endpoint: row.endpointId,
    event_id: row.eventId,
    type: row.eventType,
    seq: row.seq,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    next_attempt_at: row.status === 'pending' ? iso(row.nextAttemptAt) : null,
    last_attempt_at: iso(row.lastAttemptAt),
    last_status: row.lastStatus,
    last_error: row.lastError,
    created_at: new Date(row.createdAt).toISOString(),
    delivered_at: iso(row.deliveredAt),
    payload: JSON.parse(row.payload) as Record<string, unknown>,
  };
}

/**
 * An operator's retry of a delivery not yet delivered: it becomes `pending`, due now, with its
 * attempts reset (so it gets `max_attempts` more). Audited as `webhook.delivery_retried` with `reason`.
 * @returns the delivery after the change.
 * @throws ApiError 404 `not_found`; 409 `conflict` when it was delivered already; 503 `audit_unavailable`.
 */
export async function retryDelivery(deps: WebhookDeps, id: string, actor: string, reason: string | null = null): Promise<Delivery> {
  return deps.stores.webhooks.retry(id, (row, now) => {
    if (row === null) throw new ApiError('not_found', `No webhook delivery "${id}".`);
    if (row.status === 'delivered') throw new ApiError('conflict', `Webhook delivery "${id}" was delivered already; a receiver de-duplicates by webhook-id, so it is not sent again.`);
    const patch = { status: 'pending', attempts: 0, nextAttemptAt: now } as const;
    return {
      write: patch,
      audit: [{ actor, kind: 'webhook.delivery_retried', subject: id, detail: { endpoint: row.endpointId, event_id: row.eventId, previous_status: row.status, previous_attempts: row.attempts, reason } }],
      result: deliveryJson({ ...row, ...patch }),
    };
  });
}

/** What {@link startWebhooks} runs on. */
export interface WebhookLoopDeps {
  clock: Clock;
  logger: Logger;
  stores: { webhooks: WebhookStore; outbox: OutboxStore; grants: GrantStore };
  metrics: { registry: Registry };
}

/** Running webhook loops. */
export interface WebhookLoops {
  /** Stops every loop and waits for the rounds in flight. */
  stop(): Promise<void>;
}

/** Audit rows read per fan-out batch. */
export const FANOUT_BATCH = 200;

/**
 * Starts the webhook loops for `policy` (none when it names no endpoint): the fan-out consumer
 * (its cursor created at the head of the trail the first time, so events from before webhooks
 * were configured are not sent), the delivery worker and the expiry check, every
 * `delivery.poll_ms` (the expiry check every `poll_ms × 20`, between 1 s and 60 s). Registers the
 * metrics `broker_webhook_deliveries{status}` (counted in the database at each scrape),
 * `broker_webhook_attempts_total{endpoint,result}` and `broker_outbox_lag{consumer="webhooks"}`.
 * A failing round is logged and retried at the next poll; it never stops the server.
 */
export async function startWebhooks(deps: WebhookLoopDeps, policy: WebhookPolicy | null): Promise<WebhookLoops> {
  if (policy === null || policy.endpoints.length === 0) return { stop: async () => {} };
  const { webhooks, outbox, grants } = deps.stores;
  await outbox.start(WEBHOOK_CONSUMER, 'head');
  const registry = deps.metrics.registry;
  trackOutboxLag(registry, outbox, WEBHOOK_CONSUMER);
  if (!registry.getSingleMetric('broker_webhook_deliveries')) {
    new Gauge({
      name: 'broker_webhook_deliveries',
      help: 'Webhook deliveries by status (pending, delivered, failed)',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        try {
          for (const [status, n] of Object.entries(await webhooks.counts())) this.set({ status }, n);
        } catch {
          // an unreadable database keeps the last values; /ready reports it
        }
      },
    });
  }
  const attempts =
    (registry.getSingleMetric('broker_webhook_attempts_total') as Counter<'endpoint' | 'result'> | undefined) ??
    new Counter({ name: 'broker_webhook_attempts_total', help: 'Webhook delivery attempts by endpoint and result (delivered, retry, failed)', labelNames: ['endpoint', 'result'], registers: [registry] });
  const { pollMs } = policy.delivery;
  const worker = { store: webhooks, policy, clock: deps.clock, logger: deps.logger, onAttempt: (endpoint: string, result: string) => attempts.inc({ endpoint, result }) };
  const consumer = startOutboxConsumer({
    store: outbox,
    consumer: WEBHOOK_CONSUMER,
    batchSize: FANOUT_BATCH,
    pollMs,
    handle: fanOut({ store: webhooks, policy, clock: deps.clock }),
    onError: (err) => deps.logger.error({ err }, 'webhook fan-out failed; retrying at the next poll'),
  });
  const loops = [
    every(pollMs, () => deliverDue(worker), (err) => deps.logger.error({ err }, 'webhook delivery round failed; retrying at the next poll')),
    every(Math.min(60_000, Math.max(1000, pollMs * 20)), async () => {
      const ids = await checkExpiring({ grants, store: webhooks, clock: deps.clock, withinS: policy.expiringWithinS });
      if (ids.length > 0) consumer.wake();
    }, (err) => deps.logger.error({ err }, 'grant expiry check failed; retrying at the next interval')),
  ];
  deps.logger.info({ endpoints: policy.endpoints.map((e) => ({ id: e.id, events: e.events })) }, 'webhooks on');
  return {
    async stop() {
      await Promise.all([consumer.stop(), ...loops.map((l) => l())]);
    },
  };
}

/** Runs `round` now and then `ms` after each round ends (an unref'd timer); `stop()` resolves after the round in flight. */
function every(ms: number, round: () => Promise<unknown>, onError: (err: unknown) => void): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> | null = null;
  const run = () => {
    timer = null;
    if (stopped) return;
    inFlight = round()
      .then(() => undefined, onError)
      .finally(() => {
        inFlight = null;
        if (!stopped) {
          timer = setTimeout(run, ms);
          timer.unref();
        }
      });
  };
  run();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await inFlight;
  };
}
