/**
 * The call path's two safety valves from `policies/limits.json`, as decision steps between the
 * provider check and the claim (see docs/decisions.md):
 * - `circuit`: the provider's circuit breaker; open, it refuses 503 `provider_circuit_open` with
 *   `Retry-After` (nothing is sent, no call row is written);
 * - `limits`: every matching rule's daily hard quota (429 `quota_exceeded`, `Retry-After` to the
 *   next UTC day) and token bucket (429 `rate_limited`, `Retry-After` until a token is back). It
 *   is the last step before the claim because it counts: only a call that passed every other
 *   step uses up quota, a refused or replayed one never does, and a call whose claim then fails
 *   gives back what it took.
 * Execution runs through the circuit, which counts timeouts, provider errors without an HTTP
 * status and 5xx answers as failures, never a provider's 4xx.
 */
import { ApiError } from '../../platform/http/problem.js';
import { storeFailure } from './answer.js';
import type { Logger } from '../../platform/log.js';
import type { Registry } from 'prom-client';
import { ProviderBreakers } from '../limits/breaker.js';
import type { LimitTicket } from '../limits/plan.js';
import { counterKey, DAY_MS, dayStart, DEFAULT_LIMITS, matchingRules, type LimitedCall, type LimitsPolicy } from '../limits/policy.js';
import { limitTakerOf, type LimitStore, type LimitTaker, type TakeResult } from '../limits/store.js';
import type { Receipt } from './decision/receipt.js';
import type { Outcome } from './execute.js';

/** What the valves run on. */
export interface ValveDeps {
  /** The parsed `limits.json` (the defaults when absent). */
  policy?: LimitsPolicy;
  /** The counters; without one (a bench or test that builds the call path bare) the limits step is skipped. */
  store?: LimitStore;
  registry: Registry;
  logger: Logger;
  instanceId: string;
}

/** Whether an execution outcome counts against its provider's circuit: a timeout, a provider error without an HTTP status or with a 5xx, any other 5xx answer. */
export function countsAsProviderFailure(o: Outcome): boolean {
  if (o.kind === 'succeeded') return false;
  if (o.kind === 'timed_out') return true;
  const e = o.error;
  if (e.code === 'provider_error') {
    const status = e.extensions['provider_status'];
    return typeof status !== 'number' || status >= 500;
  }
  return e.status >= 500;
}

/** 503 `provider_circuit_open` for `provider`, with `Retry-After`. */
export function circuitOpen(provider: string, state: 'open' | 'half_open', retryAfterS: number, failures: number): ApiError {
  const why = state === 'open' ? `its circuit opened after ${failures} failed calls in a row` : 'its circuit is half-open and a probe call is testing it';
  return new ApiError(
    'provider_circuit_open',
    `Provider ${provider} is failing: ${why}, so this call was not sent. Retry in ${retryAfterS} s with the same Idempotency-Key.`,
    { provider, circuit: state },
    { 'Retry-After': String(retryAfterS) },
  );
}

/** A call that passed the valves: the limits' ticket (to give back if the claim fails) and whether it is the circuit's probe. */
export interface ValvePass {
  ticket: LimitTicket | null;
  probe: boolean;
}

/** The circuit and limits steps of this process's call path. */
export class CallValves {
  /** The policy in force (`limits.json`, or the defaults). */
  readonly policy: LimitsPolicy;
  private readonly taker: LimitTaker | undefined;
  readonly breakers: ProviderBreakers<Outcome>;

  constructor(readonly deps: ValveDeps) {
    this.policy = deps.policy ?? DEFAULT_LIMITS;
    this.taker = limitTakerOf(deps.store);
    const audit = deps.store ? deps.store.appendAudit.bind(deps.store) : () => Promise.resolve();
    this.breakers = new ProviderBreakers<Outcome>(
      { policy: this.policy, registry: deps.registry, audit, logger: deps.logger, instanceId: deps.instanceId },
      countsAsProviderFailure,
      (provider) => ({ kind: 'failed', error: circuitOpen(provider, 'open', Math.max(1, Math.ceil(this.policy.breaker.halfOpenAfterMs / 1000)), this.policy.breaker.consecutiveFailures), attempts: 0, durationMs: 0 }),
    );
  }

  /** The `circuit` step (synchronous, no I/O): records it in `receipt`; the refusal, or whether the call is the half-open probe. */
  circuit(provider: string, receipt: Receipt): ApiError | { probe: boolean } {
    const a = this.breakers.admit(provider);
    if (a.ok) {
      receipt.steps.push({ step: 'circuit', result: 'pass', note: a.probe ? `${provider} half-open probe` : `${provider} closed` });
      return { probe: a.probe };
    }
    receipt.steps.push({ step: 'circuit', result: 'fail', note: `${provider} ${a.state}` });
    return circuitOpen(provider, a.state, a.retryAfterS, this.policy.breaker.consecutiveFailures);
  }

  /**
   * The `limits` step: counts the call against every matching rule, or refuses it. Synchronous on
   * an engine with a synchronous taker (SQLite), so the call path has no `await` before its claim;
   * a promise otherwise.
   * @throws (or rejects with) ApiError 503 `audit_unavailable` when the counters cannot be written (nothing ran).
   */
  limit(call: LimitedCall, receipt: Receipt, nowMs: number): LimitTicket | ApiError | Promise<LimitTicket | ApiError> {
    const store = this.deps.store;
    if (!store) {
      receipt.steps.push({ step: 'limits', result: 'skip', note: 'no limit store' });
      return { group: call.group, windowStart: 0, rules: [] };
    }
    const rules = matchingRules(this.policy, call).map((rule) => ({ rule, key: counterKey(rule, call.group) }));
    if (rules.length === 0) {
      receipt.steps.push({ step: 'limits', result: 'skip', note: 'no matching rule' });
      return { group: call.group, windowStart: 0, rules: [] };
    }
    const decide = (r: TakeResult): LimitTicket | ApiError => this.decided(call.group, r, receipt, nowMs);
    return this.taker ? decide(this.taker.takeNow(call.group, rules, nowMs)) : store.take(call.group, rules, nowMs).then(decide);
  }

  private decided(group: string, r: TakeResult, receipt: Receipt, nowMs: number): LimitTicket | ApiError {
    if (r.kind === 'admitted') {
      if (r.softExceeded.length > 0) this.deps.logger.warn({ group, rules: r.softExceeded }, 'a daily soft quota was exceeded (audited as quota.soft_exceeded)');
      receipt.steps.push({ step: 'limits', result: 'pass', note: r.ticket.rules.map((x) => x.rule.id).join(', ') });
      return r.ticket;
    }
    receipt.steps.push({ step: 'limits', result: 'fail', note: `${r.code} by ${r.rule.id}` });
    const headers = { 'Retry-After': String(r.retryAfterS) };
    if (r.code === 'rate_limited') {
      return new ApiError(
        'rate_limited',
        `Group ${group} is over the rate of limit rule ${r.rule.id} (${r.limit} calls per minute); retry in ${r.retryAfterS} s with the same Idempotency-Key. Nothing ran.`,
        { rule: r.rule.id, limit: r.limit, window: 'minute' },
        headers,
      );
    }
    const resets = new Date(dayStart(nowMs) + DAY_MS).toISOString();
    return new ApiError(
      'quota_exceeded',
      `Group ${group} has used its daily quota under limit rule ${r.rule.id} (${r.limit} calls per UTC day); the quota resets at ${resets}. Nothing ran.`,
      { rule: r.rule.id, limit: r.limit, window: 'day', resets_at: resets },
      headers,
    );
  }

  /**
   * The `limits` step of a call that passed the `circuit` step (`probe` from there): the pass to
   * hand back with {@link giveBack} if the claim fails, or the refusal (the probe then handed
   * back). Synchronous on SQLite.
   * @throws (or rejects with) ApiError 503 `audit_unavailable` when the counters cannot be written (nothing ran).
   */
  admit(call: LimitedCall, probe: boolean, receipt: Receipt, nowMs: number): ValvePass | ApiError | Promise<ValvePass | ApiError> {
    const settle = (taken: LimitTicket | ApiError): ValvePass | ApiError => {
      if (!(taken instanceof ApiError)) return { ticket: taken, probe };
      this.breakers.cancel(call.provider, probe);
      return taken;
    };
    const fail = (err: unknown): never => {
      this.breakers.cancel(call.provider, probe);
      throw storeFailure(err, 'The call could not be counted against its limits, so nothing ran.');
    };
    try {
      const limited = this.limit(call, receipt, nowMs);
      return limited instanceof Promise ? limited.then(settle, fail) : settle(limited);
    } catch (err) {
      return fail(err);
    }
  }

  /**
   * Gives back what a call took at the valves when it did not run (its claim failed): the limits'
   * counts and the circuit's probe. A refund that cannot be written is logged (the day then
   * counts one call too many: the safe side).
   */
  async giveBack(provider: string, pass: ValvePass, nowMs: number): Promise<void> {
    this.breakers.cancel(provider, pass.probe);
    if (!pass.ticket || pass.ticket.rules.length === 0 || !this.deps.store) return;
    try {
      if (this.taker) this.taker.refundNow(pass.ticket, nowMs);
      else await this.deps.store.refund(pass.ticket, nowMs);
    } catch (err) {
      this.deps.logger.error({ group: pass.ticket.group, err }, 'a refused claim could not give back its limit counts');
    }
  }
}
