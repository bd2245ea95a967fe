/**
 * A grant as the API and the CLI show it, made from its stored row and decisions: the effective
 * status at the clock's now, RFC 3339 times, the approvals with whether each signs the current
 * terms, and the terms as audited. Pure functions, shared by the grants service and the approvals.
 */
import type { Activity } from '../../platform/audit/trail.js';
import { ApiError } from '../../platform/http/problem.js';
import type { ActionLevel } from '../../providers/contract.js';
import type { ApprovalRow, GrantRow, RenewalRow, StoredGrant } from './store.js';
import type { GrantTerms } from './terms.js';
import type { GrantStatus } from './types.js';

/** L3 grants need this many approvals, from distinct approvers in distinct groups. */
export const APPROVALS_REQUIRED = 2;

/** One signed decision on a grant, as the API shows it. `counts` = it signs the current terms. */
export interface ApprovalRecord {
  approver_id: string;
  approver_group: string;
  decision: 'approve' | 'deny';
  grant_digest: string;
  counts: boolean;
  at: string;
}

/** A grant as the API shows it. Times are RFC 3339 UTC; `status` is effective at the clock's now. */
export interface GrantRecord {
  id: string;
  group: string;
  provider: string;
  level: ActionLevel;
  allowed_actions: string[] | null;
  denied_actions: string[] | null;
  resources: string[] | null;
  reason: string;
  requested_by: string;
  status: GrantStatus;
  /** Requested lifetime after activation, in seconds (null: absolute `expires_at` or none). */
  ttl_s: number | null;
  /** sha256 of the canonical terms; what approvers sign. */
  digest: string;
  created_at: string;
  activated_at: string | null;
  expires_at: string | null;
  pending_expires_at: string | null;
  rejected_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  approvals_required: number;
  approvals: ApprovalRecord[];
  /** An L3 renewal waiting for its two approvals (the grant keeps its old expiry until then), or null. */
  renewal: PendingRenewal | null;
}

/** A renewal waiting for approvals, as a grant shows it. Times are RFC 3339 UTC. */
export interface PendingRenewal {
  id: string;
  /** The expiry the renewal asks for. */
  expires_at: string;
  /** sha256 of the grant's terms with that expiry: what approvers sign. */
  digest: string;
  requested_by: string;
  reason: string;
  pending_expires_at: string | null;
}

/** One audit row of a grant's history, oldest first. */
export interface TimelineEntry {
  seq: number;
  ts: string;
  actor: string;
  kind: string;
  detail: Record<string, unknown>;
}

/** An instant (Unix ms) as RFC 3339 UTC; null stays null. */
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
/** A pattern list as stored (JSON text); null stays null. */
export const jsonList = (list: readonly string[] | null): string | null => (list === null ? null : JSON.stringify(list));
const list = (text: string | null): string[] | null => (text === null ? null : (JSON.parse(text) as string[]));

/**
 * The status a grant has at `nowMs`: stored `active` past `expires_at`, or `pending_approval` past
 * `pending_expires_at`, is `expired` from that exact instant.
 */
export function effectiveStatus(row: Pick<GrantRow, 'status' | 'expiresAt' | 'pendingExpiresAt'>, nowMs: number): GrantStatus {
  if (row.status === 'active' && row.expiresAt !== null && nowMs >= row.expiresAt) return 'expired';
  if (row.status === 'pending_approval' && row.pendingExpiresAt !== null && nowMs >= row.pendingExpiresAt) return 'expired';
  return row.status as GrantStatus;
}

/** The terms a stored grant holds. */
export function termsOf(row: GrantRow): GrantTerms {
  return {
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowedActions: list(row.allowedActions),
    deniedActions: list(row.deniedActions),
    resources: list(row.resources),
    reason: row.reason,
    ttlS: row.ttlS,
    expiresAt: row.requestedExpiresAt,
  };
}

/** A stored grant and its decisions (oldest first) as the API shows them at `nowMs`. */
export function toRecord(row: GrantRow, approvals: readonly Omit<ApprovalRow, 'id' | 'grantId' | 'jws'>[], nowMs: number, renewal?: RenewalRow | null): GrantRecord {
  return {
    id: row.id,
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowed_actions: list(row.allowedActions),
    denied_actions: list(row.deniedActions),
    resources: list(row.resources),
    reason: row.reason,
    requested_by: row.requestedBy,
    status: effectiveStatus(row, nowMs),
    ttl_s: row.ttlS,
    digest: row.digest,
    created_at: iso(row.createdAt)!,
    activated_at: iso(row.activatedAt),
    expires_at: iso(row.expiresAt ?? (row.activatedAt === null ? row.requestedExpiresAt : null)),
    pending_expires_at: iso(row.pendingExpiresAt),
    rejected_at: iso(row.rejectedAt),
    revoked_at: iso(row.revokedAt),
    revoked_by: row.revokedBy,
    revoke_reason: row.revokeReason,
    approvals_required: row.level === 3 ? APPROVALS_REQUIRED : 0,
    approvals: approvals.map((a) => ({
      approver_id: a.approverId,
      approver_group: a.approverGroup,
      decision: a.decision as 'approve' | 'deny',
      grant_digest: a.grantDigest,
      counts: a.grantDigest === row.digest,
      at: iso(a.createdAt)!,
    })),
    renewal: renewal
      ? { id: renewal.id, expires_at: iso(renewal.expiresAt)!, digest: renewal.digest, requested_by: renewal.requestedBy, reason: renewal.reason, pending_expires_at: iso(renewal.pendingExpiresAt) }
      : null,
  };
}

/** An audit row as a grant's timeline shows it. */
export function timelineEntry(a: Activity): TimelineEntry {
  return { seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail };
}

/** The terms as audited (no secrets in grants, but the audit trail redacts anyway). */
export function auditTerms(g: GrantRecord): Record<string, unknown> {
  return {
    group: g.group,
    provider: g.provider,
    level: g.level,
    allowed_actions: g.allowed_actions,
    denied_actions: g.denied_actions,
    resources: g.resources,
    reason: g.reason,
    ttl_s: g.ttl_s,
    expires_at: g.expires_at,
    status: g.status,
    digest: g.digest,
  };
}

/** The grant a store read found. @throws ApiError 404 `not_found` when it found none. */
export function requireFound<G extends StoredGrant>(found: G | null, id: string): G {
  if (!found) throw new ApiError('not_found', `No grant ${id}.`);
  return found;
}

/** @throws ApiError 409 `grant_not_pending` (with its `status`) unless the grant is pending approval at `nowMs`. */
export function requirePending(row: GrantRow, nowMs: number): void {
  const status = effectiveStatus(row, nowMs);
  if (status !== 'pending_approval') throw new ApiError('grant_not_pending', `Grant ${row.id} is ${status}, not pending approval.`, { grant_status: status });
}
