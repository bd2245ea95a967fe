/**
 * Approvals of held calls (per-call approval, HashiCorp Vault's control groups): an approver's JWS
 * over the request digest (`request.ts`) is verified against the approver registry of the grants
 * (`policies/approvers.json` and `broker approvers add`), checked against the separation of powers
 * (the calling group cannot approve its own call; two approvers of two groups), and recorded; the
 * second approval claims the call (`awaiting_approval` → `running`, one transaction, so it runs
 * at most once even when approvals race) and the call service executes it and stores its
 * outcome, which the call's key then replays. A crash between claim and outcome leaves a
 * `running` row that crash recovery turns `unknown_outcome`, as for any claimed call. A held call
 * past its TTL becomes `expired` (audited `call.expired`) and never runs.
 */
import { withAuditedRefusals } from '../../../platform/audit/refusal.js';
import type { ActivityInput } from '../../../platform/audit/trail.js';
import type { Clock } from '../../../platform/clock.js';
import type { Config } from '../../../platform/config.js';
import type { Planned } from '../../../platform/db/seam.js';
import { ApiError, problemBody, type ErrorCode } from '../../../platform/http/problem.js';
import type { Logger } from '../../../platform/log.js';
import { approvalInvalid, verifyApproverJws, type Approver } from '../../grants/approvers.js';
import type { GrantStore } from '../../grants/store.js';
import type { TaskStore } from '../../kernel/store.js';
import { CALLS_PATH, type CallAnswer } from '../answer.js';
import { readForDecision } from '../reads.js';
import { callSubject } from '../records.js';
import type { Allowed, CallService, CallSubmission } from '../service.js';
import type { CallStore } from '../store.js';
import { CALL_APPROVALS_REQUIRED, heldRequest } from './hold.js';
import { CallApprovalClaims, requestDigest, type HeldRequest } from './request.js';
import type { CallHoldStore, HeldCall, HoldChange } from './store.js';

/** What approving held calls runs on. */
export interface CallApprovalDeps {
  clock: Clock;
  logger: Logger;
  /** `pendingGrantTtlS`: the longest life of an approval's signature; `clockSkewS`; `policiesDir` holds `approvers.json`. */
  config: Pick<Config, 'pendingGrantTtlS' | 'clockSkewS' | 'policiesDir'>;
  stores: { grants: GrantStore; calls: CallStore; tasks: Pick<TaskStore, 'find'>; holds?: CallHoldStore };
  /** The call path, which decides the held call again and executes it. */
  callService: CallService;
}

/** What {@link submitCallApproval} did: recorded one approval, ran the call (the second), or replayed an approval already recorded. */
export type CallApprovalOutcome = 'recorded' | 'executed' | 'replayed';

/** Codes of refused approvals, audited as `call.approval_refused` before answering. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set([
  'approval_invalid',
  'approval_duplicate',
  'approver_ineligible',
  'call_not_awaiting_approval',
  'call_approval_expired',
  'no_capability',
  'capability_expired',
  'insufficient_level',
  'action_denied',
  'action_not_allowed',
  'resource_out_of_scope',
  'task_required',
  'task_not_found',
  'task_state',
  'task_not_assigned',
  'approval_pending',
  'disabled_by_operator',
  'backpressure',
  'provider_unavailable',
]);

/**
 * Records an approver's signed approval of the held call `group`/`requestId`:
 * - the JWS verifies with a registered approver's key, names this call, and signs the digest of
 *   the request as held (an approval over other params, another resource or another key is 422
 *   `approval_invalid`);
 * - the approver is not of the calling group, has not approved this call already, and is not of
 *   the group of the approval already in;
 * - the call is still `awaiting_approval` and its hold has not expired;
 * - the call would still be allowed now (grant, kill switch, task, provider: every decision step
 *   is run again; a refusal is answered with its code and nothing is recorded).
 * The second approval claims the call and runs it once; the answer carries the call's outcome.
 * Submitting the identical JWS again is a no-op (`replayed`). Refusals are audited as
 * `call.approval_refused`.
 * @param submittedBy the principal that carried the JWS (audited).
 * @returns the outcome and, once executed, the call's answer (what its key replays).
 * @throws ApiError 404 `not_found`, 422 `approval_invalid`, 403 `approver_ineligible`, 409
 *   `approval_duplicate` | `call_not_awaiting_approval` | `call_approval_expired`, the decision
 *   codes of the call path, 503 `service_unavailable` | `audit_unavailable`.
 */
export async function submitCallApproval(
  deps: CallApprovalDeps,
  group: string,
  requestId: string,
  jws: string,
  submittedBy: string,
  log: Logger,
): Promise<{ outcome: CallApprovalOutcome; answer: CallAnswer | null }> {
  const holds = requireHolds(deps);
  let approverId: string | null = null;
  return withAuditedRefusals(
    REFUSALS,
    async () => {
      const { approver, claims } = await verifyApproverJws({ stores: { grants: deps.stores.grants }, config: deps.config }, jws, {
        nowMs: deps.clock.now(),
        clockSkewS: deps.config.clockSkewS,
        maxLifetimeS: deps.config.pendingGrantTtlS,
      });
      approverId = approver.id;
      const parsed = CallApprovalClaims.safeParse(claims);
      if (!parsed.success) throw approvalInvalid(`The approval payload is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);
      const payload = parsed.data;
      if (payload.group !== group || payload.request_id !== requestId) throw approvalInvalid(`The approval is for call ${payload.group}/${payload.request_id}, not ${group}/${requestId}.`);
      const held = await holds.get(group, requestId);
      if (!held) throw new ApiError('not_found', `No held call ${requestId} of group ${group}.`);
      if (held.approvals.some((a) => a.jws === jws)) return { outcome: 'replayed' as const, answer: null };
      const now = deps.clock.now();
      if (held.call.status === 'awaiting_approval' && now >= held.hold.expiresAt) {
        await expireOne(holds, group, requestId);
        throw expiredError(held);
      }
      checkApproval(held, approver, payload.request_digest, now);
      // The second approval runs the call: decide it again first (a grant revoked, a switch set or
      // a task moved since it was held refuses it now, and nothing is recorded).
      const runs = held.approvals.length + 1 >= CALL_APPROVALS_REQUIRED;
      const ev = runs ? await decideAgain(deps, held, log) : null;
      // Deciding it again may have taken the provider's half-open probe: give it back unless this
      // approval goes on to run the call.
      const giveBackProbe = () => ev && deps.callService.valves.breakers.cancel(ev.allowed.shape.provider.name, ev.allowed.probe);
      const claimed = await holds
        .change(group, requestId, (current, at) => approvalPlan(deps, current, approver, payload.request_digest, jws, submittedBy, at, ev))
        .catch((err: unknown) => {
          giveBackProbe();
          throw err;
        });
      if (!claimed || !ev) {
        giveBackProbe();
        return { outcome: 'recorded' as const, answer: null };
      }
      deps.callService.takeApproved(ev.allowed);
      ev.allowed.receipt.steps.push({ step: 'claim', result: 'pass' });
      const answer = await deps.callService.execute(ev.submission, ev.allowed, deps.clock.now());
      return { outcome: 'executed' as const, answer };
    },
    (refusal) =>
      holds.record({
        actor: approverId ? `approver:${approverId}` : submittedBy,
        kind: 'call.approval_refused',
        subject: callSubject(group, requestId),
        detail: { code: refusal.code, reason: refusal.detail, submitted_by: submittedBy },
      }),
  );
}

/** The checks of one approval against the held call as read (see {@link submitCallApproval}); run again inside the transaction. */
function checkApproval(held: HeldCall, approver: Approver, signedDigest: string, now: number): void {
  const { call, hold, approvals } = held;
  if (call.status !== 'awaiting_approval') {
    throw new ApiError('call_not_awaiting_approval', `Call ${call.requestId} of ${call.group} is ${call.status}, not awaiting approval; it runs at most once.`, { call_status: call.status });
  }
  if (now >= hold.expiresAt) throw expiredError(held);
  if (signedDigest !== hold.requestDigest) {
    throw approvalInvalid('The approval signs another request than the one held (other params, resource, key or group); review the held request and sign again.', {
      current_digest: hold.requestDigest,
      signed_digest: signedDigest,
    });
  }
  const refuse = (rule: string, detail: string) => new ApiError('approver_ineligible', detail, { rule, approver_group: approver.group });
  if (approver.group === call.group) throw refuse('requester', `Approver ${approver.id} is of the ${call.group} group, which made this call; the requesting group cannot approve its own call.`);
  if (approvals.some((a) => a.approverId === approver.id)) throw new ApiError('approval_duplicate', `Approver ${approver.id} has already approved this call; an approver counts once.`);
  const same = approvals.find((a) => a.approverGroup === approver.group);
  if (same) throw refuse('same_group', `${same.approverId} of the ${approver.group} group has approved already; the second approval must come from another group.`);
}

/** The held call decided again as it would be now, with step 3 and the hold passed. */
interface DecidedAgain {
  submission: CallSubmission;
  allowed: Allowed;
}

async function decideAgain(deps: CallApprovalDeps, held: HeldCall, log: Logger): Promise<DecidedAgain> {
  const submission: CallSubmission = {
    group: held.call.group,
    keyid: 'per-call approval',
    requestId: held.call.requestId,
    rawBody: new TextEncoder().encode(held.hold.body),
    log,
    instance: CALLS_PATH,
    approved: true,
  };
  const reads = await readForDecision(deps.stores, submission);
  const ev = deps.callService.evaluate(submission, deps.clock.now(), reads);
  if (ev.kind === 'refused') throw ev.error;
  if (ev.kind !== 'allowed') throw new Error('a held call decided again cannot be a replay');
  // The body is the one held; its digest is recomputed as a last check that nothing changed.
  if (requestDigest(heldRequest(held.call.group, held.call.requestId, ev)) !== held.hold.requestDigest) {
    throw approvalInvalid('The held request no longer has the digest it was held with; it is not run.');
  }
  return { submission, allowed: ev };
}

/** The approval recorded, and the call claimed for this process when it is the second. */
function approvalPlan(
  deps: CallApprovalDeps,
  current: HeldCall | null,
  approver: Approver,
  digest: string,
  jws: string,
  submittedBy: string,
  now: number,
  ev: DecidedAgain | null,
): Planned<HoldChange, boolean> {
  if (!current) throw new ApiError('not_found', 'The held call is gone.');
  checkApproval(current, approver, digest, now);
  const { call } = current;
  const subject = callSubject(call.group, call.requestId);
  const actor = `approver:${approver.id}`;
  const approval = { group: call.group, requestId: call.requestId, approverId: approver.id, approverGroup: approver.group, requestDigest: digest, jws };
  const audit: ActivityInput[] = [{ actor, kind: 'call.approval_recorded', subject, detail: { approver_group: approver.group, request_digest: digest, submitted_by: submittedBy } }];
  if (current.approvals.length + 1 < CALL_APPROVALS_REQUIRED || ev === null) return { write: { approval }, audit, result: false };
  const approvers = [...current.approvals.map((a) => a.approverId), approver.id];
  audit.push({ actor: 'system', kind: 'call.approved', subject, detail: { action: call.action, approvers, request_digest: digest, instance: deps.callService.instanceId } });
  return { write: { approval, call: { status: 'running', instanceId: deps.callService.instanceId, httpStatus: null, response: null } }, audit, result: true };
}

/** 409 `call_approval_expired` for a held call past its TTL. */
function expiredError(held: HeldCall): ApiError {
  return new ApiError('call_approval_expired', `Call ${held.call.requestId} of ${held.call.group} waited for its approvals until ${new Date(held.hold.expiresAt).toISOString()}; it expired and never ran. Make the call again under a new Idempotency-Key.`, {
    expires_at: new Date(held.hold.expiresAt).toISOString(),
  });
}

/**
 * Ends one held call past its TTL: status `expired`, the answer its key then replays (409
 * `call_approval_expired`), audited `call.expired` (actor `system`). A no-op when it is not
 * awaiting approval or not yet due.
 */
function expireOne(holds: CallHoldStore, group: string, requestId: string): Promise<boolean> {
  return holds.change(group, requestId, (current, now) => {
    if (!current || current.call.status !== 'awaiting_approval' || now < current.hold.expiresAt) return { result: false };
    const err = expiredError(current);
    const body = JSON.stringify(problemBody(new ApiError(err.code, err.detail, { ...err.extensions, request_id: requestId, call_status: 'expired', action: current.call.action }), CALLS_PATH));
    const audit: ActivityInput[] = [
      { actor: 'system', kind: 'call.expired', subject: callSubject(group, requestId), detail: { action: current.call.action, expires_at: err.extensions['expires_at'], approvals: current.approvals.length } },
    ];
    return { write: { call: { status: 'expired', httpStatus: err.status, response: body, finishedAt: now } }, audit, result: true };
  });
}

/**
 * Ends every held call past its TTL (see {@link expireOne}), at most `batch` per run.
 * @returns how many expired.
 */
export async function expireHeldCalls(deps: Pick<CallApprovalDeps, 'clock' | 'stores'>, batch = 500): Promise<number> {
  const holds = deps.stores.holds;
  if (!holds) return 0;
  let n = 0;
  for (const key of await holds.due(deps.clock.now(), batch)) if (await expireOne(holds, key.group, key.requestId)) n += 1;
  return n;
}

/**
 * A held call's approval state as its views show it: the exact request (what approvers review,
 * and whose canonical JSON hashes to `request_digest`), until when it waits and the approvals
 * recorded.
 */
export interface HeldView {
  request: HeldRequest;
  request_digest: string;
  expires_at: string;
  approvals_required: number;
  approvals: { approver_id: string; approver_group: string; at: string }[];
}

/** The held part of a call's view (see {@link HeldView}). */
export function heldView(held: HeldCall): HeldView {
  return {
    request: JSON.parse(held.hold.request) as HeldRequest,
    request_digest: held.hold.requestDigest,
    expires_at: new Date(held.hold.expiresAt).toISOString(),
    approvals_required: CALL_APPROVALS_REQUIRED,
    approvals: held.approvals.map((a) => ({ approver_id: a.approverId, approver_group: a.approverGroup, at: new Date(a.createdAt).toISOString() })),
  };
}

function requireHolds(deps: Pick<CallApprovalDeps, 'stores'>): CallHoldStore {
  if (!deps.stores.holds) throw new ApiError('service_unavailable', 'Held calls cannot be kept on this engine; no approval is recorded.');
  return deps.stores.holds;
}
