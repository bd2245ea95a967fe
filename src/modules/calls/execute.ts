/**
 * Execution, the step after the claim: running an action on the host, bounded by the provider
 * timeout, with automatic retries for idempotent actions only (transient failures, as the provider
 * contract's `isTransient` classifies them). What the action threw becomes the answer through the
 * contract's `failureProblem`.
 */
import type { Span } from '@opentelemetry/api';
import pRetry from 'p-retry';
import { redactString } from '../../platform/audit/redact.js';
import { ApiError } from '../../platform/http/problem.js';
import { endCallSpan } from './spans.js';
import { failureProblem, isTransient, ProviderError, untilAborted, type ActionContext, type ActionDefinition } from '../../providers/contract.js';

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
 * Runs `action.execute(params, ctx)` once, or up to {@link IDEMPOTENT_RETRIES} more times with
 * exponential backoff when the action is idempotent and the failure transient (`p-retry`).
 * The whole run (attempts and backoff) is bounded by `timeoutMs`: then `ctx.signal` aborts and the
 * outcome is `timed_out` (504 `provider_timeout`), even if the action ignores the signal.
 * Never throws.
 * @param ctx the context without `signal` (added here).
 * @param span the `call.provider` span (traces on), ended here with the outcome's status, code and attempts.
 */
export async function runAction(
  action: ActionDefinition<any, unknown>,
  params: unknown,
  ctx: Omit<ActionContext, 'signal'>,
  timeoutMs: number,
  span?: Span,
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
    endCallSpan(span, 'succeeded', null, false, attempts);
    return { kind: 'succeeded', result, attempts, durationMs: elapsed() };
  } catch (err) {
    if (controller.signal.reason instanceof ProviderTimeout) {
      const error = new ApiError(
        'provider_timeout',
        `${action.id} did not finish within ${timeoutMs} ms and was aborted; whether it took effect is unknown, so check before retrying under a new Idempotency-Key.`,
        { timeout_ms: timeoutMs },
      );
      endCallSpan(span, 'timed_out', error.code, true, attempts);
      return { kind: 'timed_out', error, attempts, durationMs: elapsed() };
    }
    if (!(err instanceof ApiError) && !(err instanceof ProviderError)) ctx.log.error({ action: action.id, err }, 'action failed unexpectedly');
    const error = failureProblem(err, action.id);
    endCallSpan(span, 'failed', error.code, true, attempts);
    return { kind: 'failed', error, attempts, durationMs: elapsed() };
  } finally {
    clearTimeout(timer);
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
