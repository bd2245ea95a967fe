/**
 * Every stable machine-readable error code the API can answer with, and its HTTP status.
 * The body is RFC 9457 problem details: `{type, title, status, code, detail, instance?, ...extensions}`.
 * Add a code here before using it; codes are a public contract and never change meaning.
 */
export const ERROR_STATUS = {
  // request shape
  malformed_json: 400,
  idempotency_key_missing: 400,
  bad_request: 400,
  validation_failed: 422,
  secret_in_input: 422,
  payload_too_large: 413,
  not_found: 404,
  method_not_allowed: 405,
  // RFC 9421 signatures (foundation)
  signature_missing: 401,
  signature_invalid: 401,
  signature_expired: 401,
  digest_mismatch: 401,
  unknown_key: 401,
  // bearer tokens and roles
  unauthorized: 401,
  forbidden: 403,
  // kernel
  illegal_transition: 409,
  separation_of_powers: 403,
  done_requirements_unmet: 409,
  precondition_failed: 412,
  precondition_required: 428,
  conflict: 409,
  // capability broker: grants
  level_above_ceiling: 422,
  expiry_too_long: 422,
  approval_invalid: 422,
  grant_not_pending: 409,
  approval_duplicate: 409,
  approver_ineligible: 403,
  grant_not_revocable: 409,
  grant_not_renewable: 409,
  call_not_awaiting_approval: 409,
  call_approval_expired: 409,
  // capability broker: access requests
  grant_request_not_pending: 409,
  // capability broker: the decision path
  unknown_action: 422,
  request_in_flight: 409,
  idempotency_key_reused: 422,
  backpressure: 429,
  rate_limited: 429,
  quota_exceeded: 429,
  no_capability: 403,
  capability_expired: 403,
  insufficient_level: 403,
  action_denied: 403,
  action_not_allowed: 403,
  resource_out_of_scope: 403,
  task_required: 403,
  task_not_found: 403,
  task_state: 403,
  task_not_assigned: 403,
  approval_pending: 403,
  // execution
  provider_error: 502,
  unknown_outcome: 502,
  /** The action ran, but its outcome could not be stored; `call_status: "unknown_outcome"`. */
  outcome_unrecorded: 502,
  provider_timeout: 504,
  provider_unavailable: 503,
  disabled_by_operator: 503,
  provider_circuit_open: 503,
  // infrastructure (fail-closed)
  audit_unavailable: 503,
  service_unavailable: 503,
  not_ready: 503,
  internal_error: 500,
} as const satisfies Record<string, number>;

/** A stable error code (see {@link ERROR_STATUS}). */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Problem type URIs are `urn:nanoclaw-broker:problem:<code>` (RFC 9457 §3.1.1). */
export const problemType = (code: ErrorCode): string => `urn:nanoclaw-broker:problem:${code}`;

/**
 * The one error type routes throw. The central error handler renders it as
 * `application/problem+json` with the status mapped from `code`.
 * @param code stable machine-readable code.
 * @param detail a sentence a human can act on.
 * @param extensions extra members merged into the problem body (e.g. `issues`, `receipt`, `allowed`).
 * @param headers extra response headers (e.g. `Retry-After`).
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(`${code}: ${detail}`);
    this.status = ERROR_STATUS[code];
  }
}

/** RFC 9457 problem details body as this service emits it. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extension: string]: unknown;
}

/**
 * Builds the problem+json body for an {@link ApiError} (RFC 9457 §3). `instance` is the request
 * path. Members are inserted in the order they serialize: `type`, `title`, `status`, `code`,
 * `detail`, `instance`, then the extensions in their own order, so the line one can act on comes
 * before a large `receipt` or `issues`. An extension never replaces one of the standard members
 * (nor `instance` when it is given). Only the order of new bodies changes: answers stored before
 * (call replays) are sent again byte for byte, and JSON readers do not depend on member order.
 */
export function problemBody(err: ApiError, instance?: string): ProblemBody {
  const head: ProblemBody = {
    type: problemType(err.code),
    title: err.code.replace(/_/g, ' '),
    status: err.status,
    code: err.code,
    detail: err.detail,
    ...(instance ? { instance } : {}),
  };
  return { ...head, ...err.extensions, ...head };
}

/** Builds a `Response` carrying the problem+json rendering of `err`. */
export function problemResponse(err: ApiError, instance?: string): Response {
  return new Response(JSON.stringify(problemBody(err, instance)), {
    status: err.status,
    headers: { 'content-type': 'application/problem+json', ...err.headers },
  });
}
