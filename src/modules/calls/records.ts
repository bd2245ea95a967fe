/**
 * What the call path writes, as data for the store ({@link CallStore}): the claim (the `running`
 * row and its `call.claimed` audit row), a refusal (`call.rejected` or `call.denied`, no row), an
 * outcome (`call.succeeded`, `call.failed`, `call.timed_out`) and an unknown outcome
 * (`call.unknown_outcome` by `system`, written by crash recovery and by the background writer of
 * unrecorded outcomes alike). Every audit row's subject is `call:<group>:<request id>`; its detail
 * holds the receipt's steps as one line (`stepsLine`), never the params or the result.
 */
import { redact } from '../../platform/audit/redact.js';
import type { ApiError } from '../../platform/http/problem.js';
import type { ActionDefinition } from '../../providers/contract.js';
import { unknownOutcomeBody, type CallAnswer, STATUS_OF } from './answer.js';
import { stepsLine, type Receipt } from './decision/receipt.js';
import type { Outcome } from './execute.js';
import type { AuditWrite, CallEnd, NewCall } from './store.js';

/** The audit subject of a call: `call:<group>:<request id>`. */
export function callSubject(group: string, requestId: string): string {
  return `call:${group}:${requestId}`;
}

/** What a claim records; times are Unix ms. */
export interface ClaimInput {
  group: string;
  requestId: string;
  /** SHA-256 hex of the request body (the idempotency fingerprint). */
  fingerprint: string;
  action: ActionDefinition<any, unknown>;
  params: unknown;
  resource: string;
  taskId: string | null;
  grantId: string;
  /** The receipt up to the claim step. */
  receipt: Receipt;
  now: number;
  /** The claiming process (`ext_calls.instance_id`). */
  instanceId: string;
}

/** The claim: the `running` row (with the receipt as of the claim) and its `call.claimed` audit row. */
export function claimRecord(c: ClaimInput): { call: NewCall; audit: AuditWrite } {
  const summary = c.action.summarize(c.params);
  return {
    call: {
      group: c.group,
      requestId: c.requestId,
      fingerprint: c.fingerprint,
      action: c.action.id,
      level: c.action.level,
      resource: c.resource,
      summary,
      taskId: c.taskId,
      grantId: c.grantId,
      receipt: JSON.stringify(c.receipt),
      createdAt: c.now,
      instanceId: c.instanceId,
    },
    audit: {
      input: {
        actor: c.group,
        kind: 'call.claimed',
        subject: callSubject(c.group, c.requestId),
        detail: { action: c.action.id, resource: c.resource, summary, task_id: c.taskId, grant_id: c.grantId, steps: stepsLine(c.receipt) },
      },
      nowMs: c.now,
    },
  };
}

/**
 * A refusal's audit row, `call.rejected` (the request's shape, its key) or `call.denied` (the
 * decision, backpressure, the provider): `{code, detail, action, grant_id, task_id, steps}`.
 */
export function refusalRecord(group: string, requestId: string, decision: 'rejected' | 'denied', err: ApiError, receipt: Receipt, now: number): AuditWrite {
  return {
    input: {
      actor: group,
      kind: `call.${decision}`,
      subject: callSubject(group, requestId),
      detail: { code: err.code, detail: err.detail, action: receipt.action, grant_id: receipt.grant_id, task_id: receipt.task_id, steps: stepsLine(receipt) },
    },
    nowMs: now,
  };
}

/**
 * An executed call's outcome: the row's end (its status, the answer's status and exact body, the
 * attempts and duration) and the `call.<status>` audit row (`{action, http_status, attempts,
 * duration_ms}`, plus `code`, `detail` and the redacted extensions of a failure).
 * @param finishedAt Unix ms.
 */
export function outcomeRecord(group: string, requestId: string, actionId: string, outcome: Outcome, answer: CallAnswer, finishedAt: number): { end: CallEnd; audit: AuditWrite } {
  const status = STATUS_OF[outcome.kind];
  const detail =
    outcome.kind === 'succeeded'
      ? { action: actionId, http_status: 200, attempts: outcome.attempts, duration_ms: outcome.durationMs }
      : {
          action: actionId,
          http_status: outcome.error.status,
          code: outcome.error.code,
          detail: outcome.error.detail,
          ...redact(outcome.error.extensions),
          attempts: outcome.attempts,
          duration_ms: outcome.durationMs,
        };
  return {
    end: { status, httpStatus: answer.status, response: answer.body, attempts: outcome.attempts, finishedAt, durationMs: outcome.durationMs },
    audit: { input: { actor: group, kind: `call.${status}`, subject: callSubject(group, requestId), detail }, nowMs: finishedAt },
  };
}

/** A claimed call as the unknown-outcome writers know it. `claimedAt` is Unix ms. */
export interface ClaimedCall {
  group: string;
  requestId: string;
  action: string;
  resource: string;
  taskId: string | null;
  claimedAt: number;
  /** The receipt the stored answer carries. */
  receipt: Receipt;
}

/** Why a call's outcome is unknown, for {@link unknownOutcomeRecord}. */
export interface UnknownOutcomeCause {
  /** The answer's detail; the default says the broker stopped while the action ran. */
  detail?: string;
  attempts: number;
  /** Execution time in ms, when known. */
  durationMs: number | null;
  /** Added to the audit row's detail (`instance`, or `cause` and `observed`). */
  audit: Record<string, unknown>;
}

/**
 * The end of a call whose outcome is unknown: status `unknown_outcome`, 502 with
 * {@link unknownOutcomeBody} as the stored answer (what its key replays from then on), and a
 * `call.unknown_outcome` audit row by `system` (`{action, resource, task_id, claimed_at}` and
 * `cause.audit`). Crash recovery and the unrecorded-outcome writer both end calls with it.
 * @param now Unix ms.
 */
export function unknownOutcomeRecord(call: ClaimedCall, cause: UnknownOutcomeCause, now: number): { end: CallEnd; audit: AuditWrite } {
  const response = JSON.stringify(unknownOutcomeBody(call.requestId, call.action, call.receipt, cause.detail));
  return {
    end: { status: 'unknown_outcome', httpStatus: 502, response, attempts: cause.attempts, finishedAt: now, durationMs: cause.durationMs },
    audit: {
      input: {
        actor: 'system',
        kind: 'call.unknown_outcome',
        subject: callSubject(call.group, call.requestId),
        detail: { action: call.action, resource: call.resource, task_id: call.taskId, claimed_at: new Date(call.claimedAt).toISOString(), ...cause.audit },
      },
      nowMs: now,
    },
  };
}
