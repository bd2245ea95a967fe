/**
 * The delivery worker: claims due `pending` deliveries (`WebhookStore.claimDue`, a lease on each
 * row so replicas never send the same one at once), POSTs each to its endpoint signed per the
 * Standard Webhooks specification (the `standardwebhooks` library: headers `webhook-id` = the
 * event id, `webhook-timestamp` = the attempt's Unix seconds, `webhook-signature` = `v1,<HMAC>`),
 * and writes the result in the row: `delivered` on a 2xx answer; otherwise another attempt at
 * `next_attempt_at` (exponential backoff with jitter, kept in the row, so a restart neither loses
 * nor resets it), or `failed` after `max_attempts`.
 */
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/log.js';
import type { WebhookEndpoint, WebhookPolicy } from './policy.js';
import type { AttemptPatch, DeliveryRow, WebhookStore } from './store.js';

/** Deliveries claimed (and sent in parallel) per round. */
export const DELIVERY_BATCH = 20;

/** What the worker runs on; `onAttempt` is told each attempt's endpoint and result (for metrics). */
export interface DeliveryDeps {
  store: WebhookStore;
  policy: WebhookPolicy;
  clock: Clock;
  logger: Logger;
  onAttempt?: (endpoint: string, result: 'delivered' | 'retry' | 'failed') => void;
  /** Jitter source in [0, 1); tests may pin it. */
  random?: () => number;
}

/**
 * The delay before attempt `attempt + 1` after `attempt` failed attempts (1-based), in ms:
 * `min(max, initial × 2^(attempt-1))`, scaled by a jitter factor in [0.5, 1) ("equal jitter", so
 * endpoints coming back are not hit by every broker at once).
 */
export function backoffMs(attempt: number, d: Pick<WebhookPolicy['delivery'], 'initialDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const base = Math.min(d.maxDelayMs, d.initialDelayMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(base * (0.5 + random() / 2));
}

/** The headers of one signed attempt: `webhook-id`, `webhook-timestamp` (s), `webhook-signature`. */
export function signedHeaders(endpoint: Pick<WebhookEndpoint, 'secret'>, eventId: string, payload: string, nowMs: number): Record<string, string> {
  const at = new Date(Math.floor(nowMs / 1000) * 1000);
  return {
    'content-type': 'application/json',
    'user-agent': 'nanoclaw-broker-webhooks',
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(endpoint.secret).sign(eventId, at, payload),
  };
}

/** Sends one delivery once and says what to write: never throws (a failure is a result). */
export async function attempt(deps: DeliveryDeps, row: DeliveryRow): Promise<AttemptPatch> {
  const d = deps.policy.delivery;
  const now = deps.clock.now();
  const attempts = row.attempts + 1;
  const endpoint = deps.policy.endpoints.find((e) => e.id === row.endpointId);
  let status: number | null = null;
  let error: string | null = null;
  if (!endpoint) {
    error = `endpoint "${row.endpointId}" is no longer in webhooks.json`;
  } else {
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: signedHeaders(endpoint, row.eventId, row.payload, now),
        body: row.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(d.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      error = e.name === 'TimeoutError' ? `no answer within ${d.timeoutMs} ms` : (e.cause?.code ?? e.message);
    }
  }
  const at = deps.clock.now();
  if (error === null) return { status: 'delivered', attempts, nextAttemptAt: at, lastAttemptAt: at, lastStatus: status, lastError: null, deliveredAt: at };
  const last = !endpoint || attempts >= d.maxAttempts;
  return {
    status: last ? 'failed' : 'pending',
    attempts,
    nextAttemptAt: last ? at : at + backoffMs(attempts, d, deps.random),
    lastAttemptAt: at,
    lastStatus: status,
    lastError: error.slice(0, 500),
    deliveredAt: null,
  };
}

/**
 * One round: claims up to {@link DELIVERY_BATCH} due deliveries, sends them in parallel, writes
 * each result.
 * @returns how many were attempted.
 */
export async function deliverDue(deps: DeliveryDeps): Promise<number> {
  const d = deps.policy.delivery;
  const rows = await deps.store.claimDue(deps.clock.now(), DELIVERY_BATCH, d.timeoutMs + 30_000);
  await Promise.all(
    rows.map(async (row) => {
      const patch = await attempt(deps, row);
      const written = await deps.store.recordAttempt(row.id, row.attempts, patch);
      const result = patch.status === 'delivered' ? 'delivered' : patch.status === 'failed' ? 'failed' : 'retry';
      if (written) deps.onAttempt?.(row.endpointId, result);
      const log = { delivery: row.id, endpoint: row.endpointId, event: row.eventId, type: row.eventType, attempts: patch.attempts, http_status: patch.lastStatus, error: patch.lastError };
      if (result === 'failed') deps.logger.warn(log, 'webhook delivery failed for good');
      else if (result === 'retry') deps.logger.info({ ...log, next_attempt_at: new Date(patch.nextAttemptAt).toISOString() }, 'webhook delivery will be retried');
    }),
  );
  return rows.length;
}
