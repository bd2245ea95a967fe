/**
 * The provider contract: everything a provider implements (an {@link ActionDefinition} per action,
 * grouped in a {@link Provider}) and everything it receives or may use while it runs (the
 * {@link ActionContext}, abort handling with {@link untilAborted}, {@link ProviderError} for
 * failures at the remote service). The broker's call path (`src/modules/calls`) registers
 * providers in its catalog and runs their actions; it answers what they return or throw as
 * {@link shapeResult} and {@link failureProblem} say.
 *
 * Providers import this file and platform pieces (`src/platform/*`: redaction, problem errors,
 * logging, paths), never a module of the broker.
 */
import type { z } from 'zod';
import { redact, redactString } from '../platform/audit/redact.js';
import { ApiError } from '../platform/http/problem.js';
import type { Logger } from '../platform/log.js';

/** Capability levels an action can require: 1 read, 2 write, 3 production. */
export type ActionLevel = 1 | 2 | 3;

/** What an executor gets besides its params. Secrets never come from here: only host config. */
export interface ActionContext {
  /** Aborted when the provider timeout (BROKER_PROVIDER_TIMEOUT_MS) fires or the broker stops. */
  signal: AbortSignal;
  /** The calling group. */
  group: string;
  /** The call's Idempotency-Key. */
  requestId: string;
  /** The coupled task, for L2+ actions. */
  taskId: string | null;
  /** The resource patterns of the grant that allowed the call; null means any resource. */
  grantResources: string[] | null;
  /** Logger bound to the request. */
  log: Logger;
}

/**
 * One action: `<provider>.<action>` with a level, a zod params schema, the resource it touches, an
 * idempotency flag, an audit summary and an executor that runs on the host. `P` is the zod schema
 * of its params. `execute` may throw:
 * - `ApiError` (e.g. 412 `precondition_failed`, 403 `resource_out_of_scope`): answered as-is;
 * - {@link ProviderError}: answered 502 `provider_error` with the provider's status and code;
 * - anything else: answered 502 `provider_error` with a generic message.
 */
export interface ActionDefinition<P extends z.ZodType = z.ZodType, R = unknown> {
  /** `<provider>.<action>`, e.g. `github.get_repo`. */
  id: string;
  level: ActionLevel;
  /** One line for `GET /v1/ext/capabilities` and the provider reference. */
  description: string;
  params: P;
  /** The thing the action touches (`owner/repo`, a GCP project id), matched against grant resources. */
  resource(params: z.infer<P>): string;
  /** True when a retry cannot cause a second effect (reads): retried at most twice with backoff. */
  idempotent: boolean;
  /**
   * For actions designed to run for a while (a log tail's window): how long, in ms, for these
   * params. The broker then waits that long plus 5 s instead of `BROKER_PROVIDER_TIMEOUT_MS` when
   * it is longer. Omit for ordinary request/response actions.
   */
  expectedDurationMs?(params: z.infer<P>): number;
  /** A short human summary for the audit trail (no secrets, no large bodies). */
  summarize(params: z.infer<P>): string;
  execute(params: z.infer<P>, ctx: ActionContext): Promise<R>;
}

/** Identity helper that keeps the params type flowing into `resource`, `summarize` and `execute`. */
export function defineAction<P extends z.ZodType, R>(action: ActionDefinition<P, R>): ActionDefinition<P, R> {
  return action;
}

/** A provider: a name, its actions, and whether the host has what it needs to run them. */
export interface Provider {
  /** Lowercase provider id, the prefix of its action ids (`github`, `cloudlogs`). */
  name: string;
  actions: ActionDefinition<any, unknown>[];
  /**
   * Null when the provider can run; otherwise why not (e.g. "GITHUB_TOKEN is not set"). Calls to
   * an unavailable provider answer 503 `provider_unavailable`, and `/ready` lists the reason.
   */
  unavailableReason(): string | null;
  /** Releases clients and sockets at shutdown. */
  close?(): Promise<void>;
}

/**
 * A failure reported by the remote service. Answered as 502 `provider_error` with
 * `provider_status` (the remote HTTP/gRPC status), `provider_code` and redacted `details`
 * ({@link failureProblem}); retried for idempotent actions when {@link isTransient}.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(
    message: string,
    readonly providerStatus: number | string | null = null,
    readonly providerCode: string | null = null,
    readonly details: unknown = undefined,
  ) {
    super(message);
  }
}

/**
 * Runs `run` unless `signal` is or becomes aborted first: rejects with the signal's reason at once
 * when it is already aborted (`run` is not started), or as soon as it aborts, without waiting for
 * `run`'s promise, which is left to settle unobserved (its rejection is handled). For actions and
 * provider requests that may ignore the signal (`ctx.signal`).
 * @throws the signal's reason, or whatever `run` rejects with.
 */
export async function untilAborted<T>(signal: AbortSignal, run: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([run(), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Whether a failed attempt may be retried: provider 5xx, 408, 429 and transport errors are;
 * anything the provider rejected for a reason (4xx) and every `ApiError` the action threw are not.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof ApiError) return false;
  if (err instanceof ProviderError) {
    const s = typeof err.providerStatus === 'number' ? err.providerStatus : null;
    return s === null || s >= 500 || s === 408 || s === 429;
  }
  return true;
}

/**
 * What the agent is answered for what an action threw: an `ApiError` as-is; a
 * {@link ProviderError} as 502 `provider_error` with `provider_status`, `provider_code` and
 * redacted `details`; anything else as 502 `provider_error` with a generic sentence (the error
 * itself is only logged).
 */
export function failureProblem(err: unknown, actionId: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ProviderError) {
    return new ApiError('provider_error', redactString(`${actionId} failed at the provider: ${err.message}`), {
      provider_status: err.providerStatus,
      provider_code: err.providerCode,
      ...(err.details !== undefined ? { details: redact(err.details) } : {}),
    });
  }
  return new ApiError('provider_error', `${actionId} failed on the host for an unexpected reason; the broker logged it.`, {
    provider_status: null,
    provider_code: null,
  });
}

/**
 * What the agent is answered for what an action returned: the value passed through the audit
 * trail's redaction once more (a provider trims, redacts and caps its own results; this is the
 * broker's last guard).
 */
export function shapeResult(result: unknown): unknown {
  return redact(result);
}
