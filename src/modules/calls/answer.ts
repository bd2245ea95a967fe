/**
 * What `POST /v1/ext/calls` answers, rendered once and sent as is (a replay sends the stored text
 * again): the 200 of a succeeded call, the problem+json of a refusal, of a failed or timed-out
 * call, of a call whose outcome could not be recorded (502 `outcome_unrecorded`) or is unknown
 * (502 `unknown_outcome`), and the replay of a stored answer. Every answer carries the decision
 * receipt.
 */
import { redact } from '../../platform/audit/redact.js';
import { ApiError, problemBody } from '../../platform/http/problem.js';
import { shapeResult } from '../../providers/contract.js';
import type { Receipt } from './decision/receipt.js';
import type { Outcome } from './execute.js';
import type { CallStatus } from './store.js';

/** An answer ready to send: status, the exact JSON body text (what a replay sends again) and headers. */
export interface CallAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** The header set on a replayed answer. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** `Retry-After` (seconds) on 429 `backpressure` and 409 `request_in_flight`. */
export const RETRY_AFTER_S = 1;
/** The path answers' problem `instance` names when the request's own path is not at hand. */
export const CALLS_PATH = '/v1/ext/calls';

/** The call status an execution outcome is stored under. */
export const STATUS_OF: Record<Outcome['kind'], CallStatus> = { succeeded: 'succeeded', failed: 'failed', timed_out: 'timed_out' };

/** `content-type` of an answer: JSON below 300, problem+json from there. */
export function contentType(status: number): Record<string, string> {
  return { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' };
}

/**
 * A refused call's answer: problem+json with the error's code, detail and extensions plus
 * `request_id` and the `receipt`, and the error's headers (`Retry-After`).
 * @param instance the request path, for the problem `instance`.
 */
export function refusalAnswer(err: ApiError, requestId: string, receipt: Receipt, instance?: string): CallAnswer {
  const body = problemBody(new ApiError(err.code, err.detail, { ...err.extensions, request_id: requestId, receipt }), instance);
  return { status: err.status, body: JSON.stringify(body), headers: { ...contentType(err.status), ...err.headers } };
}

/**
 * An executed call's answer: 200 `{request_id, status, action, result, receipt, duration_ms}` (the
 * result shaped by the provider contract's `shapeResult`), or the problem+json of a failure or a
 * timeout with the redacted extensions, `request_id`, `call_status`, `action`, `receipt` and
 * `duration_ms`. `receipt` already holds the execute step.
 */
export function outcomeAnswer(requestId: string, actionId: string, receipt: Receipt, outcome: Outcome, instance?: string): CallAnswer {
  const status = STATUS_OF[outcome.kind];
  let httpStatus: number;
  let body: unknown;
  if (outcome.kind === 'succeeded') {
    httpStatus = 200;
    body = { request_id: requestId, status, action: actionId, result: shapeResult(outcome.result), receipt, duration_ms: outcome.durationMs };
  } else {
    const e = outcome.error;
    httpStatus = e.status;
    body = problemBody(
      new ApiError(e.code, e.detail, { ...redact(e.extensions), request_id: requestId, call_status: status, action: actionId, receipt, duration_ms: outcome.durationMs }),
      instance,
    );
  }
  return { status: httpStatus, body: JSON.stringify(body), headers: contentType(httpStatus) };
}

/** The stored answer of a finished call (its row's `http_status` and `response`), replayed with `Idempotent-Replayed: true`. */
export function replayAnswer(httpStatus: number, response: string): CallAnswer {
  return { status: httpStatus, body: response, headers: { ...contentType(httpStatus), [REPLAYED_HEADER]: 'true' } };
}

/** An answer given before, sent again with `Idempotent-Replayed: true`. */
export function replayed(answer: CallAnswer): CallAnswer {
  return { ...answer, headers: { ...answer.headers, [REPLAYED_HEADER]: 'true' } };
}

/**
 * The problem body (502 `unknown_outcome`, `call_status: "unknown_outcome"`) a call whose outcome
 * is unknown answers and replays with: one interrupted by a crash, or one whose outcome could not
 * be recorded (`detail` then says so).
 */
export function unknownOutcomeBody(requestId: string, action: string, receipt: Receipt, detail?: string): Record<string, unknown> {
  const err = new ApiError(
    'unknown_outcome',
    detail ??
      `The broker stopped while ${action} was running, so whether it took effect is unknown. Check the resource before trying again under a new Idempotency-Key; this key will keep answering unknown_outcome.`,
    { request_id: requestId, call_status: 'unknown_outcome', action, receipt },
  );
  return problemBody(err, CALLS_PATH);
}

/**
 * The 502 `outcome_unrecorded` answer for a call that ran but whose outcome write failed:
 * problem+json with `request_id`, `call_status: "unknown_outcome"`, `action`, `receipt`,
 * `duration_ms` and `cause` (the storage error's message).
 */
export function outcomeUnrecordedAnswer(call: { requestId: string; action: string; receipt: Receipt; durationMs: number }, cause: unknown, instance?: string): CallAnswer {
  const err = new ApiError(
    'outcome_unrecorded',
    `${call.action} ran, but its outcome could not be recorded, so whether it took effect is unknown. Check the resource before retrying under a new Idempotency-Key; this key keeps answering this until the broker records the call as unknown_outcome.`,
    {
      request_id: call.requestId,
      call_status: 'unknown_outcome',
      action: call.action,
      receipt: call.receipt,
      duration_ms: call.durationMs,
      cause: storageCause(cause),
    },
  );
  return { status: err.status, body: JSON.stringify(problemBody(err, instance)), headers: { 'content-type': 'application/problem+json' } };
}

/** The storage error's message: an `audit_unavailable` ApiError's `cause`, else the error's message. */
export function storageCause(err: unknown): string {
  if (err instanceof ApiError) return String(err.extensions['cause'] ?? err.detail);
  return err instanceof Error ? err.message : String(err);
}

/**
 * A failed claim or refusal write as 503 `audit_unavailable` (fail-closed: nothing ran, the key is
 * not used up), `detail` saying what could not be stored and `cause` the storage error.
 */
export function storeFailure(err: unknown, detail: string): ApiError {
  const cause = err instanceof ApiError ? (err.extensions['cause'] ?? err.detail) : err instanceof Error ? err.message : String(err);
  return new ApiError('audit_unavailable', detail, { cause });
}
