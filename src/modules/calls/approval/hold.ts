/**
 * Holding a call for per-call approval: the call passed every decision step, its action is marked
 * `per_call` in `policies/approvals.json`, so instead of being claimed it is stored as
 * `awaiting_approval` with the exact request and its digest, audited `call.held`, and answered
 * 202 `approval_required` with the call's status URL. Nothing runs until two approvers of two
 * groups sign the request digest (`service.ts`).
 */
import canonicalize from 'canonicalize';
import { ApiError } from '../../../platform/http/problem.js';
import type { CallAnswer } from '../answer.js';
import { storeFailure } from '../answer.js';
import { stepsLine, type Receipt } from '../decision/receipt.js';
import type { CallKeys } from '../idempotency.js';
import { callSubject, claimRecord } from '../records.js';
import type { Allowed, CallSubmission } from '../submission.js';
import { DuplicateClaim, type CallStore } from '../store.js';
import { requestDigest, type HeldRequest } from './request.js';
import type { CallHoldStore } from './store.js';

/** Per-call approvals needed: two approvers of two groups, neither the calling group. */
export const CALL_APPROVALS_REQUIRED = 2;

/** What holding a call needs from the call service. */
export interface HoldDeps {
  /** Absent on an engine that cannot keep held calls: such calls are refused (fail closed). */
  holds: CallHoldStore | undefined;
  calls: CallStore;
  keys: CallKeys;
  refuse(s: CallSubmission, receipt: Receipt, decision: 'rejected' | 'denied', err: ApiError, now: number): Promise<CallAnswer>;
  instanceId: string;
}

/** The request a held call's approvers sign (see `request.ts`). */
export function heldRequest(group: string, requestId: string, ev: Pick<Allowed, 'shape'>): HeldRequest {
  const { shape } = ev;
  return { method: 'POST', path: '/v1/ext/calls', group, request_id: requestId, action: shape.action.id, params: shape.params, resources: [shape.resource], task_id: shape.taskId };
}

/**
 * Holds an allowed call whose action needs per-call approval (`ev.hold`): stores it
 * `awaiting_approval` until `now + ttl` with its audit row `call.held`, and answers 202
 * `{request_id, status: "awaiting_approval", code: "approval_required", status_url, approval_url,
 * request_digest, approvals_required, expires_at, receipt}` (also what the key replays).
 * @throws ApiError 503 `audit_unavailable` when the hold cannot be stored (nothing ran).
 */
export async function holdCall(d: HoldDeps, s: CallSubmission, ev: Allowed, now: number): Promise<CallAnswer> {
  const { receipt, shape } = ev;
  const expiresAt = now + ev.hold!.ttlS * 1000;
  const expiresIso = new Date(expiresAt).toISOString();
  receipt.steps.push({ step: 'call_approval', result: 'fail', note: `approval_required until ${expiresIso}` });
  receipt.decision = 'held';
  receipt.code = 'approval_required';
  if (!d.holds) {
    return d.refuse(s, receipt, 'denied', new ApiError('service_unavailable', `${shape.action.id} needs a per-call approval, and held calls cannot be kept on this engine; nothing ran.`), now);
  }
  const request = heldRequest(s.group, s.requestId, ev);
  const digest = requestDigest(request);
  const statusUrl = `/v1/ext/calls/${encodeURIComponent(s.requestId)}`;
  const body = {
    request_id: s.requestId,
    status: 'awaiting_approval',
    code: 'approval_required',
    detail: `${shape.action.id} needs a per-call approval: two approvers of two groups other than ${s.group} must sign this request's digest by ${expiresIso}; it then runs once. Nothing ran yet.`,
    action: shape.action.id,
    status_url: statusUrl,
    approval_url: `/v1/calls/${encodeURIComponent(s.group)}/${encodeURIComponent(s.requestId)}/approvals`,
    request_digest: digest,
    approvals_required: CALL_APPROVALS_REQUIRED,
    expires_at: expiresIso,
    receipt,
  };
  const answer: CallAnswer = { status: 202, body: JSON.stringify(body), headers: { 'content-type': 'application/json', location: statusUrl } };
  const { call } = claimRecord({
    group: s.group,
    requestId: s.requestId,
    fingerprint: ev.fingerprint,
    action: shape.action,
    params: shape.params,
    resource: shape.resource,
    taskId: shape.taskId,
    grantId: ev.grant.id,
    receipt,
    now,
    instanceId: d.instanceId,
  });
  const audit = {
    actor: s.group,
    kind: 'call.held',
    subject: callSubject(s.group, s.requestId),
    detail: { action: shape.action.id, resource: shape.resource, summary: call.summary, task_id: shape.taskId, grant_id: ev.grant.id, request_digest: digest, expires_at: expiresIso, steps: stepsLine(receipt) },
  };
  try {
    await d.holds.hold({ ...call, httpStatus: 202, response: answer.body }, { group: s.group, requestId: s.requestId, requestDigest: digest, body: new TextDecoder().decode(s.rawBody), request: canonicalize(request)!, createdAt: now, expiresAt }, audit);
  } catch (err) {
    if (!(err instanceof DuplicateClaim)) throw storeFailure(err, 'The call could not be held for approval, so nothing ran.');
    // Held or claimed meanwhile under the same key: answer as step 3 would have.
    receipt.steps.pop();
    const row = await d.calls.find(s.group, s.requestId);
    const again = d.keys.check(s, ev.key, ev.fingerprint, receipt, () => row);
    if (again instanceof ApiError) return d.refuse(s, receipt, 'rejected', again, now);
    if (again) return again;
    throw err;
  }
  return answer;
}
