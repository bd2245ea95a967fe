/**
 * What counts against a provider's circuit: timeouts, provider errors without an HTTP status or
 * with a 5xx, other 5xx answers; never a provider's 4xx (the caller's fault) nor a success.
 * The outcomes are built by the real `failureProblem` of the provider contract.
 */
import { describe, expect, it } from 'vitest';
import { countsAsProviderFailure } from '../../src/modules/calls/valves.js';
import type { Outcome } from '../../src/modules/calls/execute.js';
import { ApiError } from '../../src/platform/http/problem.js';
import { failureProblem, ProviderError } from '../../src/providers/contract.js';

const failed = (error: ApiError): Outcome => ({ kind: 'failed', error, attempts: 1, durationMs: 1 });

describe('countsAsProviderFailure', () => {
  it('counts timeouts, 5xx and status-less provider errors', () => {
    expect(countsAsProviderFailure({ kind: 'timed_out', error: new ApiError('provider_timeout', 'slow'), attempts: 1, durationMs: 1 })).toBe(true);
    expect(countsAsProviderFailure(failed(failureProblem(new ProviderError('boom', 503), 'github.x')))).toBe(true);
    expect(countsAsProviderFailure(failed(failureProblem(new ProviderError('reset', 'ECONNRESET'), 'github.x')))).toBe(true);
    expect(countsAsProviderFailure(failed(failureProblem(new Error('unexpected'), 'github.x')))).toBe(true);
  });

  it('does not count a provider 4xx, a 4xx problem of the action, or a success', () => {
    for (const status of [400, 404, 409, 422, 429]) expect(countsAsProviderFailure(failed(failureProblem(new ProviderError('no', status), 'github.x')))).toBe(false);
    expect(countsAsProviderFailure(failed(new ApiError('validation_failed', 'bad')))).toBe(false);
    expect(countsAsProviderFailure({ kind: 'succeeded', result: {}, attempts: 1, durationMs: 1 })).toBe(false);
  });
});
