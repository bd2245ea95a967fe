/**
 * From audit rows to webhook events. An event is one audit row seen through the event types of
 * `policy.ts`; its id is `evt_<seq>` (one audit row gives at most one event), the Standard
 * Webhooks `webhook-id` every attempt repeats so a receiver de-duplicates. Its `data` is built
 * from the row's stored detail, already redacted by the audit trail; nothing else is added.
 */
import type { OutboxRow } from '../../platform/outbox/store.js';
import type { EventType } from './policy.js';

/** One event: `id` (`evt_<seq>`), `type`, the audit `seq` it comes from, `timestamp` (RFC 3339, the audit row's), `data`. */
export interface WebhookEvent {
  id: string;
  type: EventType;
  seq: number;
  timestamp: string;
  data: Record<string, unknown>;
}

/** The audit kinds of a refused call (`call.denied`: the decision; `call.rejected`: the request's shape). */
export const REFUSAL_KINDS: readonly string[] = ['call.denied', 'call.rejected'];

/** The audit kind of the periodic check's row for a grant about to expire (`expiring.ts`). */
export const GRANT_EXPIRING_KIND = 'grant.expiring';

/** The event id of the audit row `seq`: `evt_<seq>`. */
export const eventId = (seq: number): string => `evt_${seq}`;

/**
 * The Standard Webhooks body of `event`: `{type, timestamp, data}`, as the exact JSON text sent
 * and signed.
 */
export function payloadOf(event: WebhookEvent): string {
  return JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
}

function typeOf(kind: string, detail: Record<string, unknown>): EventType | null {
  switch (kind) {
    case 'grant.created':
      // An L3 grant waits for approvals; an L0-L2 grant is active from its creation.
      return detail.status === 'pending_approval' ? 'grant.awaiting_approval' : detail.status === 'active' ? 'grant.activated' : null;
    case 'grant.activated':
    case 'grant.rejected':
    case 'grant.revoked':
    case GRANT_EXPIRING_KIND:
    case 'grant_request.created':
    case 'quota.soft_exceeded':
    case 'provider.circuit_opened':
    case 'provider.circuit_closed':
      return kind as EventType;
    case 'task.override':
      return 'gate.overridden';
    default:
      return null;
  }
}

/**
 * The event of one audit row, or null when its kind is not an event (a refused call counts
 * towards `calls.refused_burst`, which {@link burstEvent} makes).
 * `data` = `{subject, actor, audit: {seq, kind, hash}, detail}` (`detail`: the row's, parsed).
 */
export function eventOf(row: OutboxRow): WebhookEvent | null {
  const detail = JSON.parse(row.detail) as Record<string, unknown>;
  const type = typeOf(row.kind, detail);
  if (type === null) return null;
  return { id: eventId(row.seq), type, seq: row.seq, timestamp: row.ts, data: { subject: row.subject, actor: row.actor, audit: { seq: row.seq, kind: row.kind, hash: row.hash }, detail } };
}

/** The group a refused call's row belongs to (its actor), or null when the row is not a refused call. */
export function refusedGroup(row: OutboxRow): string | null {
  return REFUSAL_KINDS.includes(row.kind) ? row.actor : null;
}

/** The fixed window (start and end, Unix ms) a refusal at `tsMs` falls in: windows of `windowS` seconds from the Unix epoch. */
export function windowOf(tsMs: number, windowS: number): { start: number; end: number } {
  const w = windowS * 1000;
  const start = Math.floor(tsMs / w) * w;
  return { start, end: start + w };
}

/**
 * The `calls.refused_burst` event made by the refused call `row`, the `threshold`-th refusal of its
 * group in its window (so once per group and window). `data` = `{subject: "group:<g>", actor:
 * "system", audit: {seq, kind, hash} of that refusal, detail: {group, refusals, window_s,
 * window_start, window_end, last_code}}`.
 */
export function burstEvent(row: OutboxRow, group: string, threshold: number, windowS: number): WebhookEvent {
  const { start, end } = windowOf(Date.parse(row.ts), windowS);
  const code = (JSON.parse(row.detail) as { code?: unknown }).code;
  return {
    id: eventId(row.seq),
    type: 'calls.refused_burst',
    seq: row.seq,
    timestamp: row.ts,
    data: {
      subject: `group:${group}`,
      actor: 'system',
      audit: { seq: row.seq, kind: row.kind, hash: row.hash },
      detail: { group, refusals: threshold, window_s: windowS, window_start: new Date(start).toISOString(), window_end: new Date(end).toISOString(), last_code: typeof code === 'string' ? code : null },
    },
  };
}
