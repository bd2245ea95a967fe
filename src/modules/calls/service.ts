/**
 * The decision path of `POST /v1/ext/calls` (issue 4, "Decision order for a call"), steps 2–14,
 * after the signature middleware (step 1). Every answer carries the decision receipt; every answer
 * except a replay is audited; only a claimed call uses up its Idempotency-Key.
 */
import PQueue from 'p-queue';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { redact } from '../../platform/audit/redact.js';
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../../platform/config.js';
import type { Db } from '../../platform/db/open.js';
import { ChangeWatch } from '../../platform/db/watch.js';
import { sha256 } from '../../protocol/digest.js';
import { ApiError, problemBody } from '../../platform/http/problem.js';
import { findTaskForCoupling, type CouplingTask } from '../kernel/coupling.js';
import type { Logger } from '../../platform/log.js';
import type { Groups } from '../identity/groups.js';
import type { ActionDefinition, Provider } from '../../providers/contract.js';
import type { Catalog } from './catalog.js';
import { decide, type DecisionContext } from './decision/decide.js';
import { newReceipt, stepsLine, type Receipt } from './decision/receipt.js';
import type { GrantSource, GrantView } from '../grants/types.js';
import { GroupCommit } from './commit.js';
import { callMetrics, type CallMetrics } from './metrics.js';
import { callTimeoutMs, runAction, type Outcome } from './execute.js';
import { RecentCallKeys } from './recent.js';
import { CallStore, isDuplicateClaim, type CallRow, type CallStatus } from './store.js';
import { outcomeUnrecordedAnswer, storageCause, UnrecordedOutcomes } from './unrecorded.js';

/**
 * The body of `POST /v1/ext/calls`: `{action, params?, task_id?}`. Unknown members are refused
 * (422), so a misspelt `taskId` cannot silently skip task coupling.
 */
export const CallRequest = z.strictObject({
  action: z.string().min(1).max(200),
  params: z.unknown().optional(),
  task_id: z.string().min(1).max(128).optional(),
});

/** The header set on a replayed answer. */
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** `Retry-After` (seconds) on 429 `backpressure` and 409 `request_in_flight`. */
export const RETRY_AFTER_S = 1;

/** What the call path runs on (a subset of `Deps`, so the bench and tests can build it directly). */
export interface CallServiceDeps {
  db: Db;
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
}

/** One verified request: the signing group and key, its Idempotency-Key and the raw body bytes. */
export interface CallSubmission {
  group: string;
  keyid: string;
  requestId: string;
  rawBody: Uint8Array;
  log: Logger;
  /** The request path, for the problem `instance`. */
  instance?: string;
  /**
   * True when this connection's change watch was polled after the request arrived: the signature
   * check of step 1 does it (`KeyStore.lookup`), so `POST /v1/ext/calls` sets it. `evaluate` then
   * reads keys and grants as of that poll instead of polling again (see `ChangeWatch.hold`).
   * Leave it unset when unsure: `evaluate` polls.
   */
  watchPolled?: boolean;
  /** SHA-256 of `rawBody` when step 1 already computed it (the `Content-Digest` check); else it is hashed here. */
  bodySha256?: Buffer | null;
}

/** An answer ready to send: status, the exact JSON body text (what a replay sends again) and headers. */
export interface CallAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/**
 * The outcome of {@link CallService.evaluate}: a refusal to audit and answer, a stored answer to
 * replay, or an allowed call ready to claim.
 */
export type Evaluation =
  | { kind: 'refused'; decision: 'rejected' | 'denied'; error: ApiError; receipt: Receipt }
  | { kind: 'replay'; answer: CallAnswer }
  | { kind: 'allowed'; receipt: Receipt; shape: Shape; grant: GrantView; fingerprint: string; key: string; pending: number };

const refused = (decision: 'rejected' | 'denied', error: ApiError, receipt: Receipt): Evaluation => ({ kind: 'refused', decision, error, receipt });

/** A well-formed call: its action, provider, validated params, task and resource. */
export interface Shape {
  action: ActionDefinition<any, unknown>;
  provider: Provider;
  params: unknown;
  taskId: string | null;
  resource: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const subjectOf = (group: string, requestId: string) => `call:${group}:${requestId}`;
const STATUS_OF: Record<Outcome['kind'], CallStatus> = { succeeded: 'succeeded', failed: 'failed', timed_out: 'timed_out' };

/**
 * The per-process state of the call path: the inflight set (calls claimed here and not yet
 * ended), each group's pending count (backpressure) and execution queue (`p-queue`), the group
 * commit that makes claims, outcomes and denials durable in batches, and the calls that ran but
 * whose outcome could not be stored ({@link UnrecordedOutcomes}).
 */
export class CallService {
  readonly store: CallStore;
  readonly commits: GroupCommit;
  private readonly metrics: CallMetrics;
  /** `group\n requestId` → fingerprint, from the claim until the outcome is stored. */
  private readonly inflight = new Map<string, string>();
  private readonly pending = new Map<string, number>();
  private readonly queues = new Map<string, PQueue>();
  /** Calls that ran and whose outcome write failed, until their `unknown_outcome` row commits. */
  private readonly unrecorded: UnrecordedOutcomes;

  /** The kernel's task lookup for step 11, bound once. */
  private readonly findTask: (taskId: string) => CouplingTask | null;
  /** What refusal texts may name (ceilings, revocations), built once. */
  private readonly decisionContext: DecisionContext;
  /** The connection's change watch: one poll per {@link evaluate}, shared by steps 3 and 5. */
  private readonly watch: ChangeWatch;
  /** Keys of recent calls, so step 3 answers "new key" from memory. */
  private readonly recent: RecentCallKeys;

  constructor(private readonly deps: CallServiceDeps) {
    this.findTask = (taskId) => findTaskForCoupling(deps.db, taskId);
    this.decisionContext = { groups: deps.groups, lastRevoked: deps.grants.lastRevoked?.bind(deps.grants) };
    this.watch = ChangeWatch.of(deps.db);
    this.recent = new RecentCallKeys(deps.db, deps.clock);
    this.store = new CallStore(deps.db);
    this.metrics = callMetrics(deps.metrics.registry);
    this.commits = new GroupCommit(deps.db, this.store, (writes, seconds) => {
      this.metrics.batchWrites.observe(writes);
      this.metrics.commitSeconds.observe(seconds);
    });
    this.unrecorded = new UnrecordedOutcomes({ db: deps.db, clock: deps.clock, logger: deps.logger, store: this.store, commits: this.commits });
  }

  /** Calls of `group` claimed and not yet ended in this process (queued or running). */
  pendingFor(group: string): number {
    return this.pending.get(group) ?? 0;
  }

  /**
   * Steps 2–12 and the provider check for one verified request: synchronous, no writes, no await
   * (so nothing can slip between the idempotency and backpressure checks and the claim).
   * `submit` runs it on every call; the bench runs it alone (issue 4, "Performance" (d)).
   * The database is polled once for all of it ({@link ChangeWatch.hold}), or not at all when
   * `s.watchPolled` says step 1 did: the idempotency keys and grants are read from memory as of
   * that poll.
   * @param now the decision instant, Unix ms.
   */
  evaluate(s: CallSubmission, now: number): Evaluation {
    return this.watch.hold(() => this.evaluateHeld(s, now), s.watchPolled === true);
  }

  /** {@link evaluate}'s steps, inside the watch's hold. */
  private evaluateHeld(s: CallSubmission, now: number): Evaluation {
    const receipt = newReceipt(s.group, s.requestId, s.keyid, now);

    const shape = this.shape(s.rawBody, receipt);
    if (shape instanceof ApiError) return refused('rejected', shape, receipt);
    receipt.steps.push({ step: 'request', result: 'pass', note: `${shape.action.id} on ${shape.resource}` });

    const fingerprint = (s.bodySha256 ?? sha256(s.rawBody)).toString('hex');
    const key = `${s.group}\n${s.requestId}`;
    const known = this.knownKey(s, key, fingerprint, receipt);
    if (known instanceof ApiError) return refused('rejected', known, receipt);
    if (known) return { kind: 'replay', answer: known };
    receipt.steps.push({ step: 'idempotency', result: 'pass', note: 'new key' });

    const pending = this.pendingFor(s.group);
    const limit = this.deps.config.maxPendingPerGroup;
    if (pending >= limit) {
      receipt.steps.push({ step: 'backpressure', result: 'fail', note: `${pending} pending, limit ${limit}` });
      const err = new ApiError(
        'backpressure',
        `Group ${s.group} already has ${pending} calls queued or running (limit ${limit}); retry in ${RETRY_AFTER_S} s with the same Idempotency-Key.`,
        { pending, limit },
        { 'Retry-After': String(RETRY_AFTER_S) },
      );
      return refused('denied', err, receipt);
    }
    receipt.steps.push({ step: 'backpressure', result: 'pass', note: `${pending} pending, limit ${limit}` });

    const { action, provider } = shape;
    const verdict = decide(
      { group: s.group, action, resource: shape.resource, taskId: shape.taskId, now },
      this.deps.grants.candidates(s.group, provider.name),
      this.findTask,
      this.decisionContext,
    );
    for (const step of verdict.steps) receipt.steps.push(step);
    receipt.grant_id = verdict.grant?.id ?? null;
    if (!verdict.allowed) return refused('denied', new ApiError(verdict.code, verdict.detail, verdict.extensions), receipt);

    const unavailable = provider.unavailableReason();
    if (unavailable !== null) {
      receipt.steps.push({ step: 'provider', result: 'fail', note: unavailable });
      const err = new ApiError(
        'provider_unavailable',
        `Provider ${provider.name} cannot run on this host (${unavailable}); an operator must configure it. Nothing ran and the Idempotency-Key is not used up.`,
        { provider: provider.name },
      );
      return refused('denied', err, receipt);
    }
    receipt.steps.push({ step: 'provider', result: 'pass', note: provider.name });
    return { kind: 'allowed', receipt, shape, grant: verdict.grant, fingerprint, key, pending };
  }

  /**
   * Decides, claims, executes and records one call. Resolves with the answer for every decision
   * (success, denial, conflict, replay, provider failure), including 502 `outcome_unrecorded`
   * when the action ran but its outcome could not be stored (see `unrecorded.ts`).
   * @throws ApiError 503 `audit_unavailable` when a claim or a denial's audit row cannot be stored
   *   (fail-closed: nothing ran, and the Idempotency-Key is not used up).
   */
  async submit(s: CallSubmission): Promise<CallAnswer> {
    const now = this.deps.clock.now();
    const ev = this.evaluate(s, now);
    if (ev.kind === 'replay') {
      this.metrics.calls.inc({ outcome: 'replayed' });
      return ev.answer;
    }
    if (ev.kind === 'refused') {
      this.metrics.calls.inc({ outcome: ev.error.code });
      return this.refuse(s, ev.receipt, ev.decision, ev.error, now);
    }
    const { receipt, shape, grant, fingerprint, key, pending } = ev;
    const { action } = shape;

    // Step 13, the claim: reserved in memory at once (no await since step 3), durable before execution.
    this.inflight.set(key, fingerprint);
    this.pending.set(s.group, pending + 1);
    receipt.steps.push({ step: 'claim', result: 'pass' });
    const summary = action.summarize(shape.params);
    try {
      await this.commits.run({
        op: 'claim',
        call: {
          group: s.group,
          requestId: s.requestId,
          fingerprint,
          action: action.id,
          level: action.level,
          resource: shape.resource,
          summary,
          taskId: shape.taskId,
          grantId: grant.id,
          receipt: JSON.stringify(receipt),
          createdAt: now,
          instanceId: this.deps.instanceId,
        },
        audit: {
          input: {
            actor: s.group,
            kind: 'call.claimed',
            subject: subjectOf(s.group, s.requestId),
            detail: { action: action.id, resource: shape.resource, summary, task_id: shape.taskId, grant_id: grant.id, steps: stepsLine(receipt) },
          },
          nowMs: now,
        },
      });
    } catch (err) {
      this.release(key, s.group);
      if (!isDuplicateClaim(err)) throw storeFailure(err, 'The call could not be claimed, so nothing ran.');
      // Claimed meanwhile by another connection: answer as step 3 would have.
      const again = this.knownKey(s, key, fingerprint, receipt, true);
      if (again instanceof ApiError) return this.refuse(s, receipt, 'rejected', again, now);
      if (again) return again;
      throw err;
    }

    try {
      const outcome = await this.queue(s.group).add(() =>
        runAction(
          action,
          shape.params,
          { group: s.group, requestId: s.requestId, taskId: shape.taskId, grantResources: grant.resources ? [...grant.resources] : null, log: s.log },
          callTimeoutMs(action, shape.params, this.deps.config.providerTimeoutMs),
        ),
      );
      return await this.finish(s, ev, now, outcome);
    } finally {
      this.release(key, s.group);
    }
  }

  /** Step 2: JSON, `CallRequest`, a known action and params valid against its schema. */
  private shape(raw: Uint8Array, receipt: Receipt): Shape | ApiError {
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(raw));
    } catch {
      receipt.steps.push({ step: 'request', result: 'fail', note: 'malformed_json' });
      return new ApiError('malformed_json', 'The request body is not valid UTF-8 JSON.');
    }
    const body = CallRequest.safeParse(json);
    if (!body.success) return invalid(receipt, body.error.issues, [], 'The request body is invalid');
    const data = body.data;
    const entry = this.deps.catalog.get(data.action);
    if (!entry) {
      receipt.steps.push({ step: 'request', result: 'fail', note: 'unknown_action' });
      return new ApiError('unknown_action', `No provider registers the action "${data.action}"; GET /v1/ext/capabilities lists the actions.`);
    }
    receipt.action = entry.action.id;
    const params = entry.action.params.safeParse(data.params ?? {});
    if (!params.success) return invalid(receipt, params.error.issues, ['params'], `The params of ${entry.action.id} are invalid`);
    receipt.task_id = data.task_id ?? null;
    return { action: entry.action, provider: entry.provider, params: params.data, taskId: data.task_id ?? null, resource: entry.action.resource(params.data) };
  }

  /**
   * Step 3 for a key seen before: 422 `idempotency_key_reused` for another body, 409
   * `request_in_flight` while it runs, the 502 `outcome_unrecorded` answer again while its outcome
   * is unrecorded, otherwise the stored answer replayed. Undefined for a new key.
   * @param askDatabase read the row even when memory says the key is new: `submit`'s duplicate-claim
   *   path, where the key was taken by another connection meanwhile or is older than what the
   *   memory keeps, so only the database can answer.
   */
  private knownKey(s: CallSubmission, key: string, fingerprint: string, receipt: Receipt, askDatabase = false): CallAnswer | ApiError | undefined {
    const unrecorded = this.unrecorded.get(key);
    const live = unrecorded?.fingerprint ?? this.inflight.get(key);
    let row: CallRow | undefined;
    let stored: string | undefined = live;
    if (live === undefined) {
      if (!askDatabase && !this.recent.mayExist(s.group, s.requestId)) return undefined;
      row = this.store.find(s.group, s.requestId);
      stored = row?.fingerprint;
    }
    if (stored === undefined) return undefined;
    if (stored !== fingerprint) {
      receipt.steps.push({ step: 'idempotency', result: 'fail', note: 'idempotency_key_reused' });
      return new ApiError(
        'idempotency_key_reused',
        `The Idempotency-Key ${s.requestId} was already used with a different body; use a new key for a different call.`,
      );
    }
    if (unrecorded !== undefined) {
      s.log.info({ request_id: s.requestId, status: 'unknown_outcome' }, 'call replayed: its outcome is not recorded yet');
      return { ...unrecorded.answer, headers: { ...unrecorded.answer.headers, [REPLAYED_HEADER]: 'true' } };
    }
    if (row === undefined || row.status === 'running' || row.httpStatus === null || row.response === null) {
      receipt.steps.push({ step: 'idempotency', result: 'fail', note: 'request_in_flight' });
      return new ApiError(
        'request_in_flight',
        `The call with Idempotency-Key ${s.requestId} is still running; retry after ${RETRY_AFTER_S} s with the same key to get its outcome.`,
        {},
        { 'Retry-After': String(RETRY_AFTER_S) },
      );
    }
    s.log.info({ request_id: s.requestId, status: row.status }, 'call replayed');
    return { status: row.httpStatus, body: row.response, headers: { ...contentType(row.httpStatus), [REPLAYED_HEADER]: 'true' } };
  }

  /** Audits a refusal (steps 2–12) and renders it; the key stays unused. */
  private async refuse(s: CallSubmission, receipt: Receipt, decision: 'rejected' | 'denied', err: ApiError, now: number): Promise<CallAnswer> {
    receipt.decision = decision;
    receipt.code = err.code;
    try {
      await this.commits.run({
        op: 'audit',
        audit: {
          input: {
            actor: s.group,
            kind: `call.${decision}`,
            subject: subjectOf(s.group, s.requestId),
            detail: { code: err.code, detail: err.detail, action: receipt.action, grant_id: receipt.grant_id, task_id: receipt.task_id, steps: stepsLine(receipt) },
          },
          nowMs: now,
        },
      });
    } catch (failure) {
      throw storeFailure(failure, `The refusal (${err.code}) could not be audited, so the broker answers this instead. Nothing ran.`);
    }
    const body = problemBody(new ApiError(err.code, err.detail, { ...err.extensions, request_id: s.requestId, receipt }), s.instance);
    return { status: err.status, body: JSON.stringify(body), headers: { ...contentType(err.status), ...err.headers } };
  }

  /**
   * Step 14's end: stores the outcome with its audit row, then returns the answer. When it cannot
   * be stored, the action has run all the same: answers 502 `outcome_unrecorded` and hands the
   * call to {@link UnrecordedOutcomes}, never 503 `audit_unavailable` (which says nothing ran).
   */
  private async finish(s: CallSubmission, claim: Extract<Evaluation, { kind: 'allowed' }>, claimedAt: number, outcome: Outcome): Promise<CallAnswer> {
    const { receipt, shape } = claim;
    const actionId = shape.action.id;
    const status = STATUS_OF[outcome.kind];
    receipt.steps.push({
      step: 'execute',
      result: outcome.kind === 'succeeded' ? 'pass' : 'fail',
      note: `${outcome.kind === 'succeeded' ? 'succeeded' : outcome.error.code}; ${outcome.attempts} attempt(s)`,
    });
    let httpStatus: number;
    let body: unknown;
    let detail: Record<string, unknown>;
    if (outcome.kind === 'succeeded') {
      httpStatus = 200;
      body = { request_id: s.requestId, status, action: actionId, result: redact(outcome.result), receipt, duration_ms: outcome.durationMs };
      detail = { action: actionId, http_status: 200, attempts: outcome.attempts, duration_ms: outcome.durationMs };
    } else {
      const e = outcome.error;
      httpStatus = e.status;
      body = problemBody(
        new ApiError(e.code, e.detail, { ...redact(e.extensions), request_id: s.requestId, call_status: status, action: actionId, receipt, duration_ms: outcome.durationMs }),
        s.instance,
      );
      detail = { action: actionId, http_status: e.status, code: e.code, detail: e.detail, ...redact(e.extensions), attempts: outcome.attempts, duration_ms: outcome.durationMs };
    }
    const text = JSON.stringify(body);
    const finishedAt = this.deps.clock.now();
    try {
      await this.commits.run({
        op: 'end',
        group: s.group,
        requestId: s.requestId,
        end: { status, httpStatus, response: text, attempts: outcome.attempts, finishedAt, durationMs: outcome.durationMs },
        audit: { input: { actor: s.group, kind: `call.${status}`, subject: subjectOf(s.group, s.requestId), detail }, nowMs: finishedAt },
      });
    } catch (err) {
      const observed = { status, httpStatus, code: outcome.kind === 'succeeded' ? null : outcome.error.code, attempts: outcome.attempts, durationMs: outcome.durationMs };
      const call = { group: s.group, requestId: s.requestId, fingerprint: claim.fingerprint, action: actionId, resource: shape.resource, taskId: shape.taskId, claimedAt, receipt, observed };
      const answer = outcomeUnrecordedAnswer(call, err, s.instance);
      // Remembered before submit's `finally` releases the inflight entry: a retry never sees the row's `running`.
      void this.unrecorded.add(claim.key, { ...call, answer });
      s.log.error({ request_id: s.requestId, action: actionId, err: storageCause(err) }, 'the action ran but its outcome could not be recorded');
      this.metrics.calls.inc({ outcome: 'outcome_unrecorded' });
      return answer;
    }
    this.metrics.calls.inc({ outcome: outcome.kind === 'succeeded' ? 'succeeded' : outcome.error.code });
    return { status: httpStatus, body: text, headers: contentType(httpStatus) };
  }

  private queue(group: string): PQueue {
    let q = this.queues.get(group);
    if (!q) this.queues.set(group, (q = new PQueue({ concurrency: this.deps.config.groupConcurrency })));
    return q;
  }

  private release(key: string, group: string): void {
    this.inflight.delete(key);
    const n = (this.pending.get(group) ?? 1) - 1;
    if (n > 0) this.pending.set(group, n);
    else this.pending.delete(group);
  }
}

function contentType(status: number): Record<string, string> {
  return { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' };
}

/** A 422 `validation_failed` from zod issues, paths prefixed with `prefix`. */
function invalid(receipt: Receipt, zodIssues: readonly z.core.$ZodIssue[], prefix: string[], what: string): ApiError {
  receipt.steps.push({ step: 'request', result: 'fail', note: 'validation_failed' });
  const issues = zodIssues.map((i) => ({ path: [...prefix, ...i.path.map(String)], code: i.code, message: i.message }));
  return new ApiError('validation_failed', `${what}: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, { issues });
}

/** Maps a failed write to 503 `audit_unavailable` (an `ApiError` already of that code passes through). */
function storeFailure(err: unknown, detail: string): ApiError {
  const cause = err instanceof ApiError ? (err.extensions['cause'] ?? err.detail) : err instanceof Error ? err.message : String(err);
  return new ApiError('audit_unavailable', detail, { cause });
}
