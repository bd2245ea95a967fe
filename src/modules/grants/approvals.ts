/**
 * Signed decisions on L3 grants (the two-man rule): an approver's JWS is verified, checked
 * against the grant's current terms and the separation of powers, and recorded; the second
 * approval activates the grant, one denial rejects it. Refusals are audited as
 * `grant.approval_refused` (the audited refusal of `platform/audit/refusal.ts`).
 */
import type { ActivityInput } from '../../platform/audit/trail.js';
import { withAuditedRefusals } from '../../platform/audit/refusal.js';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError, type ErrorCode } from '../../platform/http/problem.js';
import { approvalInvalid, verifyApproval, type Approver, type ApprovalPayload } from './approvers.js';
import { requireEligible } from './eligibility.js';
import { APPROVALS_REQUIRED, effectiveStatus, iso, requireFound, requirePending, termsOf, toRecord, type GrantRecord } from './records.js';
import { pendingRenewal, renewedPatch } from './renewal.js';
import type { GrantDeps } from './service.js';
import type { GrantChange, GrantPatch, GrantState, NewApproval, RenewalRow } from './store.js';
import { expiryAt } from './terms.js';

/** What {@link submitApproval} did: recorded one approval, activated, rejected, or replayed. */
export type ApprovalOutcome = 'recorded' | 'activated' | 'rejected' | 'replayed' | 'renewed';

/** Codes of refused approvals, which are audited as `grant.approval_refused` before answering. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set(['approval_invalid', 'approval_duplicate', 'approver_ineligible', 'grant_not_pending']);

/**
 * Records a signed decision on an L3 grant (two-man rule):
 * - the JWS must verify with a registered approver's key and sign this grant's current digest;
 * - `approve`: the approver must not be the requester (nor an amender), nor of the grant's own
 *   group, nor have approved these terms already, nor share a group with the approval already in
 *   (see {@link requireEligible}); the second approval activates the grant (its expiry counts from now);
 * - `deny`: one signed denial rejects the grant.
 * Submitting the identical JWS again is a no-op (`replayed`). Refusals of an existing grant are
 * audited as `grant.approval_refused` (actor the approver once its signature verified, else
 * `submittedBy`), in a transaction of their own, before the refusal is answered.
 * @param submittedBy the principal that carried the JWS (audited).
 * @throws ApiError 404 `not_found`, 422 `approval_invalid`, 403 `approver_ineligible`,
 *   409 `approval_duplicate` | `grant_not_pending`, 503 `audit_unavailable` | `service_unavailable`.
 */
export async function submitApproval(deps: GrantDeps, id: string, jws: string, submittedBy: string): Promise<{ grant: GrantRecord; outcome: ApprovalOutcome }> {
  let approverId: string | null = null;
  return withAuditedRefusals(
    REFUSALS,
    async () => {
      const { approver, payload } = await verifyApproval(deps, jws, {
        nowMs: deps.clock.now(),
        clockSkewS: deps.config.clockSkewS,
        maxLifetimeS: deps.config.pendingGrantTtlS,
      });
      approverId = approver.id;
      if (payload.grant_id !== id) throw approvalInvalid(`The approval is for ${payload.grant_id}, not ${id}.`);
      return deps.stores.grants.change(id, (current, now) => decisionPlan(requireFound(current, id), jws, approver, payload, submittedBy, now));
    },
    (refusal) =>
      deps.stores.grants.recordRefusal(id, {
        actor: approverId ? `approver:${approverId}` : submittedBy,
        kind: 'grant.approval_refused',
        subject: id,
        detail: { code: refusal.code, reason: refusal.detail, submitted_by: submittedBy },
      }),
  );
}

/** The decision `payload` on `grant` at `now`: refused, a replay, or the approval to record with what it changes. */
function decisionPlan(
  grant: GrantState,
  jws: string,
  approver: Approver,
  payload: ApprovalPayload,
  submittedBy: string,
  now: number,
): Planned<GrantChange, { grant: GrantRecord; outcome: ApprovalOutcome }> {
  const { row, approvals: all } = grant;
  if (all.some((a) => a.jws === jws)) return { result: { grant: toRecord(row, all, now, pendingRenewal(grant.renewals, now)), outcome: 'replayed' } };
  const renewal = effectiveStatus(row, now) === 'active' ? pendingRenewal(grant.renewals, now) : undefined;
  if (renewal && payload.grant_digest === renewal.digest) return renewalDecisionPlan(grant, renewal, jws, approver, payload, submittedBy, now);
  requirePending(row, now);
  if (payload.grant_digest !== row.digest) {
    throw approvalInvalid('The approval signs other terms than the grant has now (its terms changed); review them and sign again.', {
      current_digest: row.digest,
      signed_digest: payload.grant_digest,
    });
  }
  const current = all.filter((a) => a.grantDigest === row.digest);
  if (current.some((a) => a.approverId === approver.id)) {
    throw new ApiError('approval_duplicate', `Approver ${approver.id} has already decided on these terms; an approver counts once.`);
  }
  if (payload.decision === 'approve') requireEligible({ ...row, amendedBy: grant.amendedBy }, current, approver);
  const approval: NewApproval = { grantId: row.id, approverId: approver.id, approverGroup: approver.group, decision: payload.decision, grantDigest: row.digest, jws };
  const actor = `approver:${approver.id}`;
  const audit: ActivityInput[] = [
    { actor, kind: 'grant.approval_recorded', subject: row.id, detail: { decision: payload.decision, approver_group: approver.group, grant_digest: row.digest, submitted_by: submittedBy } },
  ];
  let set: GrantPatch | undefined;
  let outcome: ApprovalOutcome = 'recorded';
  const approvals = current.filter((a) => a.decision === 'approve');
  if (payload.decision === 'deny') {
    set = { status: 'rejected', rejectedAt: now, updatedAt: now };
    audit.push({ actor, kind: 'grant.rejected', subject: row.id, detail: { approver_group: approver.group } });
    outcome = 'rejected';
  } else if (approvals.length + 1 >= APPROVALS_REQUIRED) {
    const expiresAt = expiryAt(termsOf(row), now);
    set = { status: 'active', activatedAt: now, expiresAt, updatedAt: now };
    const approvers = [...approvals.map((a) => a.approverId), approver.id];
    audit.push({ actor: 'system', kind: 'grant.activated', subject: row.id, detail: { approvers, expires_at: iso(expiresAt) } });
    outcome = 'activated';
  }
  const after = toRecord({ ...row, ...set }, [...all, { ...approval, createdAt: now }], now);
  return { write: { approval, ...(set ? { set } : {}) }, audit, result: { grant: after, outcome } };
}

/**
 * A decision on the pending renewal of an active L3 grant: the same rules as on the grant's own
 * terms (two approvers of two groups, neither the requester of the grant or of the renewal, nor of
 * the grant's group), counting only approvals given since the renewal was asked. The second
 * approval applies the new expiry (audited `grant.renewed`); one denial rejects the renewal
 * (audited `grant.renewal_rejected`) and the grant keeps its expiry.
 */
function renewalDecisionPlan(
  grant: GrantState,
  renewal: RenewalRow,
  jws: string,
  approver: Approver,
  payload: ApprovalPayload,
  submittedBy: string,
  now: number,
): Planned<GrantChange, { grant: GrantRecord; outcome: ApprovalOutcome }> {
  const { row, approvals: all } = grant;
  const current = all.filter((a) => a.grantDigest === renewal.digest && a.createdAt >= renewal.createdAt);
  if (current.some((a) => a.approverId === approver.id)) {
    throw new ApiError('approval_duplicate', `Approver ${approver.id} has already decided on this renewal; an approver counts once.`);
  }
  if (payload.decision === 'approve') requireEligible({ ...row, amendedBy: [...grant.amendedBy, renewal.requestedBy] }, current, approver);
  const approval: NewApproval = { grantId: row.id, approverId: approver.id, approverGroup: approver.group, decision: payload.decision, grantDigest: renewal.digest, jws };
  const actor = `approver:${approver.id}`;
  const audit: ActivityInput[] = [
    {
      actor,
      kind: 'grant.approval_recorded',
      subject: row.id,
      detail: { decision: payload.decision, approver_group: approver.group, grant_digest: renewal.digest, renewal_id: renewal.id, submitted_by: submittedBy },
    },
  ];
  const approvals = current.filter((a) => a.decision === 'approve');
  const recorded = [...all, { ...approval, createdAt: now }];
  if (payload.decision === 'deny') {
    audit.push({ actor, kind: 'grant.renewal_rejected', subject: row.id, detail: { renewal_id: renewal.id, approver_group: approver.group } });
    const write: GrantChange = { approval, renewal: { update: [{ ids: [renewal.id], set: { status: 'rejected' } }] } };
    return { write, audit, result: { grant: toRecord(row, recorded, now), outcome: 'rejected' } };
  }
  if (approvals.length + 1 < APPROVALS_REQUIRED) {
    return { write: { approval }, audit, result: { grant: toRecord(row, recorded, now, renewal), outcome: 'recorded' } };
  }
  const set = renewedPatch(renewal.digest, renewal.expiresAt, now);
  const approvers = [...approvals.map((a) => a.approverId), approver.id];
  audit.push({
    actor: 'system',
    kind: 'grant.renewed',
    subject: row.id,
    detail: { renewal_id: renewal.id, previous_expires_at: iso(row.expiresAt), expires_at: iso(renewal.expiresAt), reason: renewal.reason, digest: renewal.digest, approvers },
  });
  const write: GrantChange = { approval, set, renewal: { update: [{ ids: [renewal.id], set: { status: 'applied', appliedAt: now } }] } };
  return { write, audit, result: { grant: toRecord({ ...row, ...set }, recorded, now), outcome: 'renewed' } };
}
