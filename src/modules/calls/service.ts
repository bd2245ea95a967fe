/**
 * The call path of `POST /v1/ext/calls` after the signature check (step 1, `verify.ts`), as one
 * sequence: {@link CallService.evaluate} decides (steps 2–12 and the provider check, synchronous),
 * then {@link CallService.submit} claims (step 13), executes and records the outcome (step 14),
 * and answers. Each step's work has its own file: `shape.ts` (2), `idempotency.ts` (3),
 * `backpressure.ts` (4), `decision/decide.ts` (5–12), the provider check here, `records.ts` and
 * the store (13, and 14's outcome), `execute.ts` (14), `answer.ts` (every answer).
 *
 * Every answer carries the decision receipt; every answer except a replay is audited; only a
 * claimed call uses up its Idempotency-Key. Nothing runs before its claim is durable, and nothing
 * is answered before its outcome is durable (or reported 502 `outcome_unrecorded`).
 */
import type { Registry } from 'prom-client';
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../../platform/config.js';
import type { Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { sha256 } from '../../protocol/digest.js';
import type { Provider } from '../../providers/contract.js';
import type { GrantSource } from '../grants/types.js';
import type { Groups } from '../identity/groups.js';
import { findTaskForCoupling, type CouplingTask } from '../kernel/coupling.js';
import { outcomeAnswer, outcomeUnrecordedAnswer, refusalAnswer, STATUS_OF, storageCause, storeFailure, type CallAnswer } from './answer.js';
import { backpressureRefusal, GroupLanes } from './backpressure.js';
import type { Catalog } from './catalog.js';
import { decide, type DecisionContext } from './decision/decide.js';
import { newReceipt, type Receipt } from './decision/receipt.js';
import { callTimeoutMs, runAction, type Outcome } from './execute.js';
import { CallKeys } from './idempotency.js';
import { callMetrics, type CallMetrics } from './metrics.js';
import { claimRecord, outcomeRecord, refusalRecord } from './records.js';
import { shapeCall, type Shape } from './shape.js';
import { disabledByOperator, matchSwitch } from '../switches/service.js';
import { activeSwitchReaderOf, type ActiveSwitchReader, type SwitchStore } from '../switches/store.js';
import { DuplicateClaim, GroupBackpressure, type CallKeyReader, type CallStore } from './store.js';
import { readForDecision, type DecisionReads } from './reads.js';
import type { TaskStore } from '../kernel/store.js';
import { UnrecordedOutcomes } from './unrecorded.js';
import { activeContext } from '../../platform/trace.js';
import { CALL_SPANS, callSpan, endCallSpan, endDecisionSpan } from './spans.js';
import type { LimitsPolicy } from '../limits/policy.js';
import type { LimitStore } from '../limits/store.js';
import { CallValves } from './valves.js';
import type { PerCallPolicy } from './approval/policy.js';
import type { CallHoldStore } from './approval/store.js';
import { holdCall, type HoldDeps } from './approval/hold.js';
import type { Allowed, CallSubmission } from './submission.js';

/** What the call path runs on (a subset of `Deps`, so the bench and tests can build it directly). */
export interface CallServiceDeps {
  /**
   * The SQLite database the kernel's task lookup of step 11 (coupling) reads synchronously; none on
   * an engine whose rows are read before the decision (`stores`).
   */
  db?: Db;
  /**
   * The calls' store (claims, outcomes, refusals) and the kernel's tasks. A calls store with a
   * synchronous row read (`CallKeyReader.findNow`, SQLite) is read inside the decision, and the
   * coupled task from `db`; otherwise (PostgreSQL) both are read before it (`reads.ts`).
   */
  stores: { calls: CallStore; tasks: Pick<TaskStore, 'find'>; switches?: SwitchStore; limits?: LimitStore; holds?: CallHoldStore };
  /** `policies/limits.json` (rate limits, quotas, the circuit breakers); the defaults when absent. */
  limits?: LimitsPolicy;
  clock: Clock;
  catalog: Catalog;
  grants: GrantSource;
  /** The groups and their ceilings, for refusal texts (`DecisionContext.groups`); optional. */
  groups?: Groups;
  logger: Logger;
  config: Pick<Config, 'maxPendingPerGroup' | 'groupConcurrency' | 'providerTimeoutMs'>;
  /** This process's broker instance id: every call it claims records it as owner (`ext_calls.instance_id`). */
  instanceId: string;
  /** The app's Prometheus registry (`deps.metrics`). */
  metrics: { registry: Registry };
  /** Which actions are held for per-call approval (`approval/policy.ts`); none when absent. */
  perCall?: PerCallPolicy;
}

export type { Allowed, CallSubmission } from './submission.js';

/**
 * The outcome of {@link CallService.evaluate}: a refusal to audit and answer, a stored answer to
 * replay, or an allowed call ready to claim.
 */
export type Evaluation =
  | { kind: 'refused'; decision: 'rejected' | 'denied'; error: ApiError; receipt: Receipt }
  | { kind: 'replay'; answer: CallAnswer }
  | Allowed;

const refused = (decision: 'rejected' | 'denied', error: ApiError, receipt: Receipt): Evaluation => ({ kind: 'refused', decision, error, receipt });

/**
 * The per-process state of the call path: the keys held from claim to outcome (`CallKeys`), each
 * group's pending count and execution queue (`GroupLanes`), the calls that ran but whose outcome
 * could not be stored (`UnrecordedOutcomes`), and the calls' store, whose SQLite implementation
 * makes claims, outcomes and refusals durable in group commits.
 */
export class CallService {
  readonly store: CallStore;
  /** The synchronous row read of step 3 (SQLite); undefined when the rows are read before the decision. */
  private readonly reader: CallKeyReader | undefined;
  private readonly metrics: CallMetrics;
  private readonly keys: CallKeys;
  private readonly lanes: GroupLanes;
  private readonly unrecorded: UnrecordedOutcomes;
  /** The kernel's task lookup for step 11, bound once. */
  private readonly findTask: (taskId: string) => CouplingTask | null;
  /** The operators' kill switches, read on every call (one indexed query); none on an engine that does not serve them. */
  private readonly switches: ActiveSwitchReader | undefined;
  /** What refusal texts may name (ceilings, revocations), built once. */
  private readonly decisionContext: DecisionContext;
  /** The circuit and limits steps (`valves.ts`). */
  readonly valves: CallValves;

  constructor(private readonly deps: CallServiceDeps) {
    this.metrics = callMetrics(deps.metrics.registry);
    this.store = deps.stores.calls;
    this.reader = keyReaderOf(deps.stores.calls);
    this.switches = activeSwitchReaderOf(deps.stores.switches);
    this.store.observeCommits((writes, seconds) => {
      this.metrics.batchWrites.observe(writes);
      this.metrics.commitSeconds.observe(seconds);
    });
    this.unrecorded = new UnrecordedOutcomes({ clock: deps.clock, logger: deps.logger, store: this.store });
    this.keys = new CallKeys(this.reader, this.unrecorded);
    this.lanes = new GroupLanes(deps.config);
    const db = deps.db;
    this.findTask = db
      ? (taskId) => findTaskForCoupling(db, taskId)
      : () => {
          throw new Error('step 11 needs the task read before the decision');
        };
    this.decisionContext = { groups: deps.groups, lastRevoked: deps.grants.lastRevoked?.bind(deps.grants) };
    this.valves = new CallValves({ policy: deps.limits, store: deps.stores.limits, registry: deps.metrics.registry, logger: deps.logger, instanceId: deps.instanceId });
  }

  /** This process's broker instance id (the owner it records on the calls it claims). */
  get instanceId(): string {
    return this.deps.instanceId;
  }

  /** Calls of `group` claimed and not yet ended in this process (queued or running). */
  pendingFor(group: string): number {
    return this.lanes.pendingFor(group);
  }

  /**
   * Steps 2–12 and the provider check for one verified request: synchronous, no writes, no
   * await (so nothing can slip between the idempotency and backpressure checks and the claim).
   * `submit` runs it on every call; the bench runs it alone. Step 3 reads the call's row, step 5
   * the grant index (`GrantSource`, refreshed through its change sequence).
   * @param now the decision instant, Unix ms.
   * @param reads step 3's row and step 11's task read before (required when the calls store has no
   *   synchronous read; see `reads.ts`).
   */
  evaluate(s: CallSubmission, now: number, reads?: DecisionReads): Evaluation {
    const receipt = newReceipt(s.group, s.requestId, s.keyid, now);

    // Step 2: the request's shape.
    const shape = shapeCall(s.rawBody, this.deps.catalog, receipt);
    if (shape instanceof ApiError) return refused('rejected', shape, receipt);
    receipt.steps.push({ step: 'request', result: 'pass', note: `${shape.action.id} on ${shape.resource}` });

    // Step 3: the Idempotency-Key.
    const fingerprint = (s.bodySha256 ?? sha256(s.rawBody)).toString('hex');
    const key = CallKeys.of(s.group, s.requestId);
    const known = s.approved ? undefined : this.keys.check(s, key, fingerprint, receipt, reads && (() => reads.row));
    if (known instanceof ApiError) return refused('rejected', known, receipt);
    if (known) return { kind: 'replay', answer: known };
    receipt.steps.push({ step: 'idempotency', result: 'pass', note: 'new key' });

    // The operators' kill switches (after step 3, so an answered key still replays; before any grant logic).
    const off = this.switchedOff(s.group, shape, receipt, reads);
    if (off) return refused('denied', off, receipt);

    // Step 4: backpressure.
    const pending = this.lanes.check(s.group, receipt);
    if (pending instanceof ApiError) return refused('denied', pending, receipt);

    // Steps 5–12: grant, expiry, level, deny list, allow list, resource, task, approval.
    const verdict = decide(
      { group: s.group, action: shape.action, resource: shape.resource, taskId: shape.taskId, now },
      this.deps.grants.candidates(s.group, shape.provider.name),
      reads ? (taskId) => (taskId === reads.taskId ? reads.task : null) : this.findTask,
      this.decisionContext,
    );
    for (const step of verdict.steps) receipt.steps.push(step);
    receipt.grant_id = verdict.grant?.id ?? null;
    if (!verdict.allowed) return refused('denied', new ApiError(verdict.code, verdict.detail, verdict.extensions), receipt);

    // The provider can run on this host (after step 12, before the claim).
    const unavailable = providerUnavailable(shape.provider, receipt);
    if (unavailable) return refused('denied', unavailable, receipt);

    // Per-call approval (after every other decision step): held, or approved already. A held call
    // takes no circuit probe and no quota now; its approval decides it again and runs it.
    const hold = s.approved ? undefined : this.deps.perCall?.(shape.action.id);
    if (s.approved) receipt.steps.push({ step: 'call_approval', result: 'pass', note: 'approved' });
    if (hold) return { kind: 'allowed', receipt, shape, grant: verdict.grant, fingerprint, key, pending, probe: false, hold };

    // The provider's circuit breaker (before the claim: an open circuit sends nothing).
    const circuit = this.valves.circuit(shape.provider.name, receipt);
    if (circuit instanceof ApiError) return refused('denied', circuit, receipt);
    return { kind: 'allowed', receipt, shape, grant: verdict.grant, fingerprint, key, pending, probe: circuit.probe };
  }

  /**
   * The kill-switch step: the first active switch matching the call's group, provider or action
   * (or `all`) refuses it with 503 `disabled_by_operator`, naming the switch. Read from the
   * database on every call (synchronously on SQLite, before the decision in `reads` otherwise), so
   * a switch set by any process applies from the next request.
   */
  private switchedOff(group: string, shape: Shape, receipt: Receipt, reads: DecisionReads | undefined): ApiError | undefined {
    const active = this.switches ? this.switches.active() : reads?.switches;
    if (active === undefined) {
      if (this.deps.stores.switches === undefined) {
        receipt.steps.push({ step: 'switch', result: 'skip', note: 'no switch store' });
        return undefined;
      }
      // A switch store whose switches were not read for this call: an operator's brake could not
      // be honoured, so nothing runs (fail closed).
      receipt.steps.push({ step: 'switch', result: 'fail', note: 'kill switches were not read' });
      return new ApiError('service_unavailable', 'The operators\' kill switches could not be read, so no call runs; nothing was executed.', {}, { 'Retry-After': '60' });
    }
    const call = { group, provider: shape.provider.name, action: shape.action.id };
    const hit = matchSwitch(active, call);
    if (!hit) {
      receipt.steps.push({ step: 'switch', result: 'pass', note: 'no switch' });
      return undefined;
    }
    receipt.steps.push({ step: 'switch', result: 'fail', note: `${hit.id} (${hit.scope}${hit.target === null ? '' : ` ${hit.target}`})` });
    return disabledByOperator(hit, call);
  }

  /**
   * Decides, claims, executes and records one call. Resolves with the answer for every decision
   * (success, denial, conflict, replay, provider failure), including 502 `outcome_unrecorded`
   * when the action ran but its outcome could not be stored (see `unrecorded.ts`).
   * @throws ApiError 503 `audit_unavailable` when a claim or a refusal's audit row cannot be stored
   *   (fail-closed: nothing ran, and the Idempotency-Key is not used up).
   */
  async submit(s: CallSubmission): Promise<CallAnswer> {
    const reads = this.reader ? undefined : await readForDecision(this.deps.stores, s);
    const now = this.deps.clock.now();
    const decided = callSpan(CALL_SPANS.decision, s);
    const ev = this.evaluate(s, now, reads);
    endDecisionSpan(decided, ev);
    if (ev.kind === 'replay') {
      this.metrics.calls.inc({ outcome: 'replayed' });
      return ev.answer;
    }
    if (ev.kind === 'refused') {
      this.metrics.calls.inc({ outcome: ev.error.code });
      return this.refuse(s, ev.receipt, ev.decision, ev.error, now);
    }

    if (ev.hold) return holdCall(this.holdDeps(), s, ev, now);

    // The limits (rates and daily quotas): counted last, so only a call about to be claimed uses
    // up quota. Synchronous on SQLite (no await since step 3); given back if the claim fails.
    const provider = ev.shape.provider.name;
    const admitted = this.valves.admit({ group: s.group, provider, action: ev.shape.action.id, level: ev.shape.action.level }, ev.probe, ev.receipt, now);
    const pass = admitted instanceof Promise ? await admitted : admitted;
    if (pass instanceof ApiError) {
      this.metrics.calls.inc({ outcome: pass.code });
      return this.refuse(s, ev.receipt, 'denied', pass, now);
    }

    // Step 13: the claim, held in memory at once (no await since step 3 on SQLite), durable before execution.
    const lost = await this.claim(s, ev, now).catch(async (err: unknown) => {
      await this.valves.giveBack(provider, pass, now);
      throw err;
    });
    if (lost) {
      await this.valves.giveBack(provider, pass, now);
      return lost;
    }
    return this.execute(s, ev, now);
  }

  /**
   * Step 14 for a claimed call: runs it in the group's queue and records its outcome; the key
   * and the pending slot are released at the end. Also the end of a held call the second
   * approval claimed (`approval/service.ts`), after `takeApproved`; such a call was approved by
   * two people and takes no rate-limit or quota count.
   */
  async execute(s: CallSubmission, ev: Allowed, now: number): Promise<CallAnswer> {
    const provider = ev.shape.provider.name;
    try {
      // Step 14: execution, in the group's queue, bounded by the provider timeout.
      const { action, params, taskId } = ev.shape;
      const grantResources = ev.grant.resources ? [...ev.grant.resources] : null;
      const parent = activeContext(); // the lane may run it later, in another request's context
      const outcome = await this.lanes.run(s.group, () =>
        this.valves.breakers.run(provider, ev.probe, () =>
          runAction(action, params, { group: s.group, requestId: s.requestId, taskId, grantResources, log: s.log }, callTimeoutMs(action, params, this.deps.config.providerTimeoutMs), callSpan(CALL_SPANS.provider, s, ev, parent)),
        ),
      );
      // The outcome, durable before the answer.
      return await this.record(s, ev, now, outcome);
    } finally {
      this.keys.release(ev.key);
      this.lanes.release(s.group);
    }
  }

  /** Holds the key and a pending slot for a held call its second approval claimed, before {@link execute}. */
  takeApproved(ev: Allowed): void {
    this.keys.hold(ev.key, ev.fingerprint);
    this.lanes.take(ev.receipt.group, ev.pending);
  }

  /** What holding a call needs from this service. */
  private holdDeps(): HoldDeps {
    return { holds: this.deps.stores.holds, calls: this.store, keys: this.keys, refuse: (s, r, d, e, n) => this.refuse(s, r, d, e, n), instanceId: this.deps.instanceId };
  }

  /**
   * Step 13: holds the key and a pending slot, then stores the `running` row and its audit row.
   * @returns undefined once claimed; the answer step 3 would have given when another connection
   *   claimed the key meanwhile (the slot and key released).
   * @throws ApiError 503 `audit_unavailable` when the claim cannot be stored (nothing ran).
   */
  private async claim(s: CallSubmission, ev: Allowed, now: number): Promise<CallAnswer | undefined> {
    const { receipt, shape } = ev;
    receipt.steps.push({ step: 'claim', result: 'pass' });
    const { call, audit } = claimRecord({
      group: s.group,
      requestId: s.requestId,
      fingerprint: ev.fingerprint,
      action: shape.action,
      params: shape.params,
      resource: shape.resource,
      taskId: shape.taskId,
      grantId: ev.grant.id,
      receipt,
      now,
      instanceId: this.deps.instanceId,
    });
    this.keys.hold(ev.key, ev.fingerprint);
    this.lanes.take(s.group, ev.pending);
    const span = callSpan(CALL_SPANS.claim, s, ev);
    try {
      await this.store.claim(call, audit);
      endCallSpan(span, 'running');
      return undefined;
    } catch (err) {
      const code = err instanceof GroupBackpressure ? 'backpressure' : err instanceof DuplicateClaim ? 'duplicate_claim' : 'audit_unavailable';
      endCallSpan(span, 'unclaimed', code, code === 'audit_unavailable');
      this.keys.release(ev.key);
      this.lanes.release(s.group);
      if (err instanceof GroupBackpressure) {
        // The group's pending calls across replicas reached the limit: step 4's answer.
        receipt.steps.pop();
        this.metrics.calls.inc({ outcome: 'backpressure' });
        return this.refuse(s, receipt, 'denied', backpressureRefusal(s.group, err.pending, err.limit, receipt), now);
      }
      if (!(err instanceof DuplicateClaim)) throw storeFailure(err, 'The call could not be claimed, so nothing ran.');
      // Claimed meanwhile by another connection: answer as step 3 would have.
      const row = this.reader ? undefined : await this.store.find(s.group, s.requestId);
      const again = this.keys.check(s, ev.key, ev.fingerprint, receipt, this.reader ? undefined : () => row);
      if (again instanceof ApiError) return this.refuse(s, receipt, 'rejected', again, now);
      if (again) return again;
      throw err;
    }
  }

  /**
   * The call path's audited refusal (steps 2–12, the provider check): appends the refusal's audit
   * row, then renders it; the key stays unused. Unlike the platform's audited refusal
   * (`platform/audit/refusal.ts`: record, then throw to the error handler), a call's refusal is
   * an answer that carries its receipt and request id, every one of them is audited, and its row
   * goes through the group commit with the claims and outcomes of concurrent calls.
   * @throws ApiError 503 `audit_unavailable` when the row cannot be stored (nothing ran).
   */
  async refuse(s: CallSubmission, receipt: Receipt, decision: 'rejected' | 'denied', err: ApiError, now: number): Promise<CallAnswer> {
    receipt.decision = decision;
    receipt.code = err.code;
    const span = callSpan(CALL_SPANS.outcome, s);
    try {
      await this.store.recordRefusal(refusalRecord(s.group, s.requestId, decision, err, receipt, now));
      endCallSpan(span, 'refused', err.code);
    } catch (failure) {
      endCallSpan(span, 'refused', 'audit_unavailable', true);
      throw storeFailure(failure, `The refusal (${err.code}) could not be audited, so the broker answers this instead. Nothing ran.`);
    }
    return refusalAnswer(err, s.requestId, receipt, s.instance);
  }

  /**
   * Step 14's end: stores the outcome with its audit row, then returns the answer. When it cannot
   * be stored, the action has run all the same: answers 502 `outcome_unrecorded` and hands the
   * call to {@link UnrecordedOutcomes}, never 503 `audit_unavailable` (which says nothing ran).
   */
  private async record(s: CallSubmission, ev: Allowed, claimedAt: number, outcome: Outcome): Promise<CallAnswer> {
    const { receipt, shape } = ev;
    const actionId = shape.action.id;
    receipt.steps.push({
      step: 'execute',
      result: outcome.kind === 'succeeded' ? 'pass' : 'fail',
      note: `${outcome.kind === 'succeeded' ? 'succeeded' : outcome.error.code}; ${outcome.attempts} attempt(s)`,
    });
    const answer = outcomeAnswer(s.requestId, actionId, receipt, outcome, s.instance);
    const { end, audit } = outcomeRecord(s.group, s.requestId, actionId, outcome, answer, this.deps.clock.now());
    const span = callSpan(CALL_SPANS.outcome, s, ev);
    try {
      await this.store.end(s.group, s.requestId, end, audit);
      endCallSpan(span, STATUS_OF[outcome.kind], outcome.kind === 'succeeded' ? null : outcome.error.code);
    } catch (err) {
      endCallSpan(span, STATUS_OF[outcome.kind], 'outcome_unrecorded', true);
      const observed = { status: STATUS_OF[outcome.kind], httpStatus: answer.status, code: outcome.kind === 'succeeded' ? null : outcome.error.code, attempts: outcome.attempts, durationMs: outcome.durationMs };
      const call = { group: s.group, requestId: s.requestId, fingerprint: ev.fingerprint, action: actionId, resource: shape.resource, taskId: shape.taskId, claimedAt, receipt, observed };
      const unrecorded = outcomeUnrecordedAnswer({ requestId: s.requestId, action: actionId, receipt, durationMs: outcome.durationMs }, err, s.instance);
      // Remembered before submit's `finally` releases the key: a retry never sees the row's `running`.
      void this.unrecorded.add(ev.key, { ...call, answer: unrecorded });
      s.log.error({ request_id: s.requestId, action: actionId, err: storageCause(err) }, 'the action ran but its outcome could not be recorded');
      this.metrics.calls.inc({ outcome: 'outcome_unrecorded' });
      return unrecorded;
    }
    this.metrics.calls.inc({ outcome: outcome.kind === 'succeeded' ? 'succeeded' : outcome.error.code });
    return answer;
  }
}

/** The provider check: null when `provider` can run here; else the 503 `provider_unavailable` refusal. Records the step. */
function providerUnavailable(provider: Provider, receipt: Receipt): ApiError | null {
  const reason = provider.unavailableReason();
  if (reason === null) {
    receipt.steps.push({ step: 'provider', result: 'pass', note: provider.name });
    return null;
  }
  receipt.steps.push({ step: 'provider', result: 'fail', note: reason });
  return new ApiError(
    'provider_unavailable',
    `Provider ${provider.name} cannot run on this host (${reason}); an operator must configure it. Nothing ran and the Idempotency-Key is not used up.`,
    { provider: provider.name },
  );
}

/** The store's synchronous row read, when it has one (SQLite). */
function keyReaderOf(store: CallStore): CallKeyReader | undefined {
  return typeof (store as Partial<CallKeyReader>).findNow === 'function' ? (store as CallStore & CallKeyReader) : undefined;
}
