/**
 * The decision receipt: every step the broker took on a call, in order, with its result. It is
 * returned in every answer to `POST /v1/ext/calls` (success and problem alike) and written to the
 * audit trail.
 */

/** The steps of the decision order, as they appear in a receipt (README "Calls"). */
export type StepName =
  | 'signature'
  | 'request'
  | 'idempotency'
  | 'switch'
  | 'backpressure'
  | 'grant'
  | 'expiry'
  | 'level'
  | 'deny_list'
  | 'allow_list'
  | 'resource'
  | 'task'
  | 'approval'
  | 'provider'
  | 'circuit'
  | 'limits'
  | 'call_approval'
  | 'claim'
  | 'execute';

/** One step: `pass`, `fail` (the decision stopped here) or `skip` (did not apply), and a short note. */
export interface ReceiptStep {
  step: StepName;
  result: 'pass' | 'fail' | 'skip';
  note?: string;
}

/**
 * A decision receipt. `decision` is `allowed` once the call was claimed, `denied` for steps 4–12
 * (and an unavailable provider), `rejected` for the request shape and idempotency conflicts.
 * `decided_at` is RFC 3339 UTC.
 */
export interface Receipt {
  request_id: string;
  group: string;
  action: string | null;
  decided_at: string;
  /** `held`: every step passed and the call waits for its per-call approvals (202 `approval_required`). */
  decision: 'allowed' | 'denied' | 'rejected' | 'held';
  code: string | null;
  grant_id: string | null;
  task_id: string | null;
  steps: ReceiptStep[];
}

/** The last instant formatted by {@link decidedAt}, and its text: concurrent calls share their millisecond. */
let lastMs = Number.NaN;
let lastIso = '';

/** `nowMs` as RFC 3339 UTC (`toISOString`), formatted once per millisecond. */
function decidedAt(nowMs: number): string {
  if (nowMs !== lastMs) {
    lastIso = new Date(nowMs).toISOString();
    lastMs = nowMs;
  }
  return lastIso;
}

/** Starts a receipt for a verified request (step 1 recorded as passed with the key id). */
export function newReceipt(group: string, requestId: string, keyid: string, nowMs: number): Receipt {
  return {
    request_id: requestId,
    group,
    action: null,
    decided_at: decidedAt(nowMs),
    decision: 'allowed',
    code: null,
    grant_id: null,
    task_id: null,
    steps: [{ step: 'signature', result: 'pass', note: keyid }],
  };
}

/**
 * The receipt's steps as one line for the audit trail, e.g.
 * `signature:pass request:pass … task:skip approval:skip provider:pass circuit:pass limits:pass claim:pass`. The audit row
 * carries this line with the code, grant and task; the full receipt (with each step's note) is in
 * the answer and in the call's row. One string keeps the hashed, redacted audit row small.
 */
export function stepsLine(receipt: Receipt): string {
  let line = '';
  for (const s of receipt.steps) line += line === '' ? `${s.step}:${s.result}` : ` ${s.step}:${s.result}`;
  return line;
}
