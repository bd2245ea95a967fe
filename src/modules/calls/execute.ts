/**
 * Step 14 of the decision order: running an action on the host, bounded by the provider timeout,
 * with automatic retries for idempotent actions only (issue 4, "Outcomes and provider failures").
 */
import pRetry from 'p-retry';
import { redact, redactString } from '../../platform/audit/redact.js';
import { ApiError } from '../../platform/http/problem.js';
import { ProviderError, type ActionContext, type ActionDefinition } from './catalog.js';

/** Automatic retries of an idempotent action (so at most 3 attempts); never for the others. */
export const IDEMPOTENT_RETRIES = 2;
/** First retry delay in ms; doubled for the second (with jitter up to 2×). */
export const RETRY_MIN_DELAY_MS = 100;

/** How an execution ended. `durationMs` covers every attempt and the backoff between them. */
export type Outcome =
  | { kind: 'succeeded'; result: unknown; attempts: number; durationMs: number }
  | { kind: 'failed' | 'timed_out'; error: ApiError; attempts: number; durationMs: number };

/** Raised through `ctx.signal` when the provider timeout fires. */
class ProviderTimeout extends Error {
  override name = 'ProviderTimeout';
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
 * Maps what an action threw to the answer: an `ApiError` as-is; a {@link ProviderError} to 502
 * `provider_error` with `provider_status`, `provider_code` and redacted `details`; anything else
 * to 502 `provider_error` with a generic sentence (the error itself is only logged).
 */
export function toApiError(err: unknown, actionId: string): ApiError {
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
 * Runs `action.execute(params, ctx)` once, or up to {@link IDEMPOTENT_RETRIES} more times with
 * exponential backoff when the action is idempotent and the failure transient (`p-retry`).
 * The whole run (attempts and backoff) is bounded by `timeoutMs`: then `ctx.signal` aborts and the
 * outcome is `timed_out` (504 `provider_timeout`), even if the action ignores the signal.
 * Never throws.
 * @param ctx the context without `signal` (added here).
 */
export async function runAction(
  action: ActionDefinition<any, unknown>,
  params: unknown,
  ctx: Omit<ActionContext, 'signal'>,
  timeoutMs: number,
): Promise<Outcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new ProviderTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
  const started = performance.now();
  const fullCtx: ActionContext = { ...ctx, signal: controller.signal };
  let attempts = 0;
  const attempt = () => {
    attempts += 1;
    return action.execute(params, fullCtx);
  };
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const run = () =>
      action.idempotent
        ? pRetry(attempt, {
            retries: IDEMPOTENT_RETRIES,
            minTimeout: RETRY_MIN_DELAY_MS,
            factor: 2,
            randomize: true,
            signal: controller.signal,
            shouldRetry: ({ error }) => isTransient(error),
            onFailedAttempt: ({ error, retriesLeft }) => {
              if (retriesLeft > 0 && isTransient(error)) ctx.log.warn({ action: action.id, attempt: attempts, err: redactString(error.message) }, 'provider attempt failed; retrying');
            },
          })
        : attempt();
    const result = await untilAborted(controller.signal, run);
    return { kind: 'succeeded', result, attempts, durationMs: elapsed() };
  } catch (err) {
    if (controller.signal.reason instanceof ProviderTimeout) {
      const error = new ApiError(
        'provider_timeout',
        `${action.id} did not finish within ${timeoutMs} ms and was aborted; whether it took effect is unknown, so check before retrying under a new Idempotency-Key.`,
        { timeout_ms: timeoutMs },
      );
      return { kind: 'timed_out', error, attempts, durationMs: elapsed() };
    }
    if (!(err instanceof ApiError) && !(err instanceof ProviderError)) ctx.log.error({ action: action.id, err }, 'action failed unexpectedly');
    return { kind: 'failed', error: toApiError(err, action.id), attempts, durationMs: elapsed() };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `run` unless `signal` is or becomes aborted first: rejects with the signal's reason at once
 * when it is already aborted (`run` is not started), or as soon as it aborts, without waiting for
 * `run`'s promise, which is left to settle unobserved (its rejection is handled). For actions and
 * provider requests that may ignore the signal.
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

/** Headroom added to an action's own expected duration before the broker aborts it, in ms. */
export const DURATION_GRACE_MS = 5_000;

/**
 * The timeout for one call, in ms: `BROKER_PROVIDER_TIMEOUT_MS`, or longer for an action that is
 * designed to run longer (a log tail's collection window), i.e. its `expectedDurationMs(params)`
 * plus {@link DURATION_GRACE_MS}.
 */
export function callTimeoutMs(action: Pick<ActionDefinition, 'expectedDurationMs'>, params: unknown, providerTimeoutMs: number): number {
  const expected = action.expectedDurationMs?.(params);
  return expected === undefined ? providerTimeoutMs : Math.max(providerTimeoutMs, expected + DURATION_GRACE_MS);
}
