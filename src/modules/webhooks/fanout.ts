/**
 * The webhook fan-out: the outbox consumer `webhooks`. For each batch of audit rows it makes the
 * events (`events.ts`), one `pending` delivery per (subscribed endpoint, event), and writes them
 * with the cursor in one transaction (`WebhookStore.enqueue`). A replayed batch (a crash before
 * the commit, another replica) inserts nothing twice: `UNIQUE(endpoint_id, event_id)`.
 * A burst of refused calls is counted per group and fixed window from the trail itself, so the
 * `threshold`-th refusal of a window makes the one `calls.refused_burst` event, however the rows
 * fall into batches.
 */
import { monotonicFactory } from 'ulid';
import type { Clock } from '../../platform/clock.js';
import type { OutboxHandler } from '../../platform/outbox/consumer.js';
import { burstEvent, eventOf, payloadOf, refusedGroup, windowOf, type WebhookEvent } from './events.js';
import type { WebhookPolicy } from './policy.js';
import type { DeliveryRow, WebhookStore } from './store.js';

/** The outbox consumer name of the fan-out (its row in `outbox_cursors`). */
export const WEBHOOK_CONSUMER = 'webhooks';

const nextUlid = monotonicFactory();

/** What the fan-out runs on. */
export interface FanOutDeps {
  store: WebhookStore;
  policy: WebhookPolicy;
  clock: Clock;
}

/**
 * The events of `rows` (oldest first): one per mapped audit row, plus a `calls.refused_burst` for
 * a refusal that is the `threshold`-th of its group in its window (counting the refusals stored
 * before the batch with `countRefusals`).
 */
export async function eventsOf(deps: FanOutDeps, rows: Parameters<OutboxHandler>[0]): Promise<WebhookEvent[]> {
  const { threshold, windowS } = deps.policy.refusedBurst;
  const counting = deps.policy.endpoints.some((e) => e.events.includes('calls.refused_burst'));
  const counts = new Map<string, number>();
  const events: WebhookEvent[] = [];
  for (const row of rows) {
    const event = eventOf(row);
    if (event) {
      events.push(event);
      continue;
    }
    const group = counting ? refusedGroup(row) : null;
    if (group === null) continue;
    const { start } = windowOf(Date.parse(row.ts), windowS);
    const key = `${group}\n${start}`;
    const before = counts.get(key) ?? (await deps.store.countRefusals(group, new Date(start).toISOString(), row.seq));
    counts.set(key, before + 1);
    if (before + 1 === threshold) events.push(burstEvent(row, group, threshold, windowS));
  }
  return events;
}

/** The outbox handler of the fan-out: see the file's description. */
export function fanOut(deps: FanOutDeps): OutboxHandler {
  return async (rows, batch) => {
    const events = await eventsOf(deps, rows);
    const now = deps.clock.now();
    const deliveries: DeliveryRow[] = [];
    for (const event of events) {
      for (const endpoint of deps.policy.endpoints) {
        if (!endpoint.events.includes(event.type)) continue;
        deliveries.push({
          id: `whd_${nextUlid(now)}`,
          endpointId: endpoint.id,
          eventId: event.id,
          eventType: event.type,
          seq: event.seq,
          payload: payloadOf(event),
          status: 'pending',
          attempts: 0,
          nextAttemptAt: now,
          lastAttemptAt: null,
          lastStatus: null,
          lastError: null,
          createdAt: now,
          deliveredAt: null,
        });
      }
    }
    const upTo = rows[rows.length - 1]!.seq;
    await deps.store.enqueue(batch, WEBHOOK_CONSUMER, deliveries, upTo);
    return upTo;
  };
}
