/**
 * An access request as the API and the CLI show it, made from its stored row: the effective
 * status at the clock's now and RFC 3339 times. Pure functions, shared by the service and its plans.
 */
import { ApiError } from '../../platform/http/problem.js';
import type { ActionLevel } from '../../providers/contract.js';
import { iso } from '../grants/records.js';
import type { GrantTerms } from '../grants/terms.js';
import type { GrantRequestRow, GrantRequestStatus } from './store.js';

/** An access request as the API shows it. Times are RFC 3339 UTC; `status` is effective at the clock's now. */
export interface GrantRequestRecord {
  id: string;
  /** The requesting group. */
  group: string;
  provider: string;
  level: ActionLevel;
  allowed_actions: string[] | null;
  denied_actions: string[] | null;
  resources: string[] | null;
  /** The grant's requested lifetime after activation, in seconds. */
  ttl_s: number;
  justification: string;
  /** The grant this request renews, or null. */
  renews: string | null;
  /** The grant this request extends in place (its approval renews that grant), or null. */
  renewal_of: string | null;
  status: GrantRequestStatus;
  created_at: string;
  /** When a pending request expires if nobody decides. */
  pending_expires_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  /** The grant the approval created; null before (and for a moment during) the approval. */
  grant_id: string | null;
}

const list = (text: string | null): string[] | null => (text === null ? null : (JSON.parse(text) as string[]));

/** The status a request has at `nowMs`: a stored `pending` one is `expired` from its `pending_expires_at` on. */
export function effectiveRequestStatus(row: Pick<GrantRequestRow, 'status' | 'pendingExpiresAt'>, nowMs: number): GrantRequestStatus {
  if (row.status === 'pending' && nowMs >= row.pendingExpiresAt) return 'expired';
  return row.status as GrantRequestStatus;
}

/** A stored request as the API shows it at `nowMs`. */
export function toRequestRecord(row: GrantRequestRow, nowMs: number): GrantRequestRecord {
  return {
    id: row.id,
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowed_actions: list(row.allowedActions),
    denied_actions: list(row.deniedActions),
    resources: list(row.resources),
    ttl_s: row.ttlS,
    justification: row.justification,
    renews: row.renews,
    renewal_of: row.renewalOf,
    status: effectiveRequestStatus(row, nowMs),
    created_at: iso(row.createdAt)!,
    pending_expires_at: iso(row.pendingExpiresAt)!,
    decided_by: row.decidedBy,
    decided_at: iso(row.decidedAt),
    decision_reason: row.decisionReason,
    grant_id: row.grantId,
  };
}

/**
 * The grant terms a request turns into: its terms, the asked lifetime, and as `reason`
 * `grant request <id>: <justification>` (so the grant names the request it came from).
 */
export function grantTermsOf(row: GrantRequestRow): GrantTerms {
  return {
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowedActions: list(row.allowedActions),
    deniedActions: list(row.deniedActions),
    resources: list(row.resources),
    reason: `grant request ${row.id}: ${row.justification}`,
    ttlS: row.ttlS,
    expiresAt: null,
  };
}

/** The terms as audited with each change of a request. */
export function auditRequest(r: GrantRequestRecord): Record<string, unknown> {
  return {
    group: r.group,
    provider: r.provider,
    level: r.level,
    allowed_actions: r.allowed_actions,
    denied_actions: r.denied_actions,
    resources: r.resources,
    ttl_s: r.ttl_s,
    justification: r.justification,
    renews: r.renews,
    status: r.status,
  };
}

/** The request a store read found. @throws ApiError 404 `not_found` when it found none. */
export function requireRequest(row: GrantRequestRow | null, id: string): GrantRequestRow {
  if (!row) throw new ApiError('not_found', `No grant request ${id}.`);
  return row;
}

/**
 * The separation of powers on a request: the group that asked never decides it (approve or deny).
 * @param actor the deciding principal (`main`, `operator:<subject>`).
 * @throws ApiError 403 `separation_of_powers`.
 */
export function requireNotRequester(row: GrantRequestRow, actor: string): void {
  if (actor === row.group) {
    throw new ApiError('separation_of_powers', `The ${row.group} group asked for grant request ${row.id}, so it cannot decide it; an operator (or main, for another group's request) decides.`, {
      rule: 'requester',
    });
  }
}

/** @throws ApiError 409 `grant_request_not_pending` (with its `request_status`) unless the request is pending at `nowMs`. */
export function requirePendingRequest(row: GrantRequestRow, nowMs: number): void {
  const status = effectiveRequestStatus(row, nowMs);
  if (status !== 'pending') throw new ApiError('grant_request_not_pending', `Grant request ${row.id} is ${status}, not pending; nothing was changed.`, { request_status: status });
}
