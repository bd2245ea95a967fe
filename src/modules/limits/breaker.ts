/**
 * A circuit breaker per provider (cockatiel's `CircuitBreakerPolicy` with a `ConsecutiveBreaker`):
 * after `consecutive_failures` failed calls in a row (`policies/limits.json` `breaker`) the
 * provider's circuit opens, and its calls are refused before their claim with 503
 * `provider_circuit_open` (nothing is sent) until `half_open_after_ms` has passed; then ONE call
 * is let through as the half-open probe (the others are still refused while it runs): its success
 * closes the circuit, its failure opens it again. What counts as a failure is the caller's
 * predicate (the call path counts timeouts, provider errors without an HTTP status and 5xx
 * answers, never a provider's 4xx, which is the caller's fault).
 *
 * The state is in this process's memory: each broker process (each replica) protects itself and
 * learns of a provider's outage from its own calls. A host's credentials name one GitHub App
 * installation (or one token), so one circuit per provider is one per installation.
 *
 * Every state change is audited (`provider.circuit_opened`, `provider.circuit_half_opened`,
 * `provider.circuit_closed`, subject `provider:<name>`) and exported as the gauge
 * `broker_provider_circuit_state{provider}` (0 closed, 1 open, 2 half-open).
 */
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhenResult, type CircuitBreakerPolicy } from 'cockatiel';
import { Gauge, type Registry } from 'prom-client';
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Logger } from '../../platform/log.js';
import type { LimitsPolicy } from './policy.js';

/** May a call go to the provider now: yes (`probe` when it is the half-open probe), or no with `Retry-After` seconds. */
export type CircuitAdmission = { ok: true; probe: boolean } | { ok: false; state: 'open' | 'half_open'; retryAfterS: number };

interface Circuit {
  policy: CircuitBreakerPolicy;
  /** When it last opened (Unix ms, `Date.now()`, the clock cockatiel measures `halfOpenAfter` with). */
  openedAt: number;
  /** A call admitted as the half-open probe and not yet finished. */
  probeOut: boolean;
}

/** What {@link ProviderBreakers} runs on. */
export interface BreakerDeps {
  policy: Pick<LimitsPolicy, 'breaker'>;
  registry: Registry;
  /** Appends the state changes' audit rows (in a transaction of their own). */
  audit: (rows: readonly ActivityInput[]) => Promise<void>;
  logger: Logger;
  /** This process's instance id, named in the audit rows (the state is per process). */
  instanceId: string;
}

const STATE_NAME = { [CircuitState.Closed]: 'closed', [CircuitState.Open]: 'open', [CircuitState.HalfOpen]: 'half_open', [CircuitState.Isolated]: 'open' } as const;

/** The circuits of this process, one per provider, created on first use. */
export class ProviderBreakers<T> {
  private readonly circuits = new Map<string, Circuit>();
  private readonly gauge: Gauge<'provider'>;

  /**
   * @param isFailure whether a call's result counts as a failure.
   * @param broken the result of a call refused by the circuit at its execution (it opened while
   *   the call was queued after its claim); nothing was sent.
   */
  constructor(
    private readonly deps: BreakerDeps,
    private readonly isFailure: (result: T) => boolean,
    private readonly broken: (provider: string) => T,
  ) {
    const name = 'broker_provider_circuit_state';
    this.gauge =
      (deps.registry.getSingleMetric(name) as Gauge<'provider'> | undefined) ??
      new Gauge({ name, help: 'Circuit state of each provider in this process: 0 closed, 1 open, 2 half-open', labelNames: ['provider'], registers: [deps.registry] });
  }

  private circuit(provider: string): Circuit {
    let c = this.circuits.get(provider);
    if (c) return c;
    const { consecutiveFailures, halfOpenAfterMs } = this.deps.policy.breaker;
    const policy = circuitBreaker(handleWhenResult((r) => this.isFailure(r as T)), { halfOpenAfter: halfOpenAfterMs, breaker: new ConsecutiveBreaker(consecutiveFailures) });
    const circuit: Circuit = { policy, openedAt: 0, probeOut: false };
    this.circuits.set(provider, circuit);
    this.gauge.set({ provider }, 0);
    policy.onBreak(() => {
      circuit.openedAt = Date.now();
      this.changed(provider, 'provider.circuit_opened', CircuitState.Open, { consecutive_failures: consecutiveFailures, half_open_after_ms: halfOpenAfterMs });
    });
    policy.onHalfOpen(() => this.changed(provider, 'provider.circuit_half_opened', CircuitState.HalfOpen, {}));
    policy.onReset(() => this.changed(provider, 'provider.circuit_closed', CircuitState.Closed, {}));
    return circuit;
  }

  /** Gauge, log line and audit row of one state change (the audit write is not awaited: a failure is logged). */
  private changed(provider: string, kind: string, state: CircuitState, detail: Record<string, unknown>): void {
    this.gauge.set({ provider }, state);
    this.deps.logger.warn({ provider, state: STATE_NAME[state] }, `provider circuit ${STATE_NAME[state]}`);
    const row: ActivityInput = { actor: 'system', kind, subject: `provider:${provider}`, detail: { provider, instance_id: this.deps.instanceId, ...detail } };
    this.deps.audit([row]).catch((err: unknown) => this.deps.logger.error({ provider, kind, err }, 'the circuit state change could not be audited'));
  }

  /** Every circuit this process has used, by provider name, with its state and when it last opened (Unix ms; null when never). */
  states(): { provider: string; state: 'closed' | 'open' | 'half_open'; openedAt: number | null }[] {
    return [...this.circuits.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([provider, c]) => ({ provider, state: STATE_NAME[c.policy.state], openedAt: c.openedAt === 0 ? null : c.openedAt }));
  }

  /** The state of `provider`'s circuit in this process. */
  state(provider: string): 'closed' | 'open' | 'half_open' {
    const c = this.circuits.get(provider);
    return c ? STATE_NAME[c.policy.state] : 'closed';
  }

  /**
   * The pre-claim check: a closed circuit admits; an open one refuses until `half_open_after_ms`
   * has passed since it opened, then admits one call as the probe (`probe: true`, which the caller
   * must pass to {@link run}, or hand back with {@link cancel} if it does not run); a half-open
   * circuit (its probe running) refuses. Synchronous, no I/O.
   */
  admit(provider: string): CircuitAdmission {
    const c = this.circuit(provider);
    const state = c.policy.state;
    if (state === CircuitState.Closed) return { ok: true, probe: false };
    if (state === CircuitState.HalfOpen || c.probeOut) return { ok: false, state: 'half_open', retryAfterS: 1 };
    const waitMs = c.openedAt + this.deps.policy.breaker.halfOpenAfterMs - Date.now();
    if (waitMs > 0) return { ok: false, state: 'open', retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
    c.probeOut = true;
    return { ok: true, probe: true };
  }

  /** Hands back a probe admission whose call was not run (its claim failed). */
  cancel(provider: string, probe: boolean): void {
    if (probe) this.circuit(provider).probeOut = false;
  }

  /**
   * Runs `fn` through `provider`'s circuit, counting its result. When the circuit refuses it at
   * this point (it opened after the call was admitted), `fn` is not run and the result is
   * `broken(provider)`. Never throws what the circuit does.
   */
  async run(provider: string, probe: boolean, fn: () => Promise<T>): Promise<T> {
    const c = this.circuit(provider);
    try {
      return await c.policy.execute(fn);
    } catch (err) {
      if (err instanceof BrokenCircuitError) return this.broken(provider);
      throw err;
    } finally {
      if (probe) c.probeOut = false;
    }
  }
}
