/**
 * Calls whose action ran but whose outcome could not be stored (a full or read-only disk, a batch
 * of the group commit that failed to COMMIT). The action's effect is then unknown to the trail:
 * the call row still reads `running`, and the key is used up (the claim committed).
 *
 * - The agent is answered 502 `outcome_unrecorded` with `call_status: "unknown_outcome"`, never
 *   503 `audit_unavailable`, which promises that nothing ran and the key is unused.
 * - Until the row is written, a retry with the same key is answered the same 502 from memory
 *   (the row alone would say `running`, a 409 `request_in_flight` forever).
 * - In the background the call is ended `unknown_outcome` (502, the body of
 *   {@link unknownOutcomeBody}, a `call.unknown_outcome` audit row by `system`), retried with a
 *   capped exponential backoff (`p-retry`) until it commits, so no restart is needed once space
 *   returns. From then on the key replays that stored 502 `unknown_outcome`, as after crash
 *   recovery. If the process stops first, the row is still `running` and recovery ends it the same
 *   way at the next start.
 */
import pRetry, { AbortError } from 'p-retry';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { ApiError, problemBody } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Receipt } from './decision/receipt.js';
import type { GroupCommit } from './commit.js';
import { unknownOutcomeBody } from './recovery.js';
import type { CallStatus, CallStore } from './store.js';

/** An answer as the call path sends it: HTTP status, the exact JSON body text, headers. */
export interface StoredAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** What the provider answered, as far as this process saw it (kept in the audit row). */
export interface ObservedOutcome {
  /** `succeeded`, `failed` or `timed_out`. */
  status: CallStatus;
  httpStatus: number;
  /** The problem code of a failed or timed-out call; null on success. */
  code: string | null;
  attempts: number;
  /** Execution time in ms. */
  durationMs: number;
}

/** A claimed call that ran and whose outcome write failed. Times are Unix ms. */
export interface UnrecordedCall {
  group: string;
  requestId: string;
  /** SHA-256 hex of the request body (step 3's fingerprint). */
  fingerprint: string;
  action: string;
  resource: string;
  taskId: string | null;
  claimedAt: number;
  receipt: Receipt;
  observed: ObservedOutcome;
  /** The 502 `outcome_unrecorded` answer given, replayed to the key until the row is written. */
  answer: StoredAnswer;
}

/** Backoff of the background write, ms: 100, 200, 400, … then every 5 s until it commits. */
export const RECORD_RETRY_MS = { min: 100, max: 5000 } as const;

/**
 * The 502 `outcome_unrecorded` answer for a call whose outcome write failed: problem+json with
 * `request_id`, `call_status: "unknown_outcome"`, `action`, `receipt`, `duration_ms` and `cause`
 * (the storage error's message).
 * @param instance the request path, for the problem `instance`.
 */
export function outcomeUnrecordedAnswer(call: Omit<UnrecordedCall, 'answer'>, cause: unknown, instance?: string): StoredAnswer {
  const err = new ApiError(
    'outcome_unrecorded',
    `${call.action} ran, but its outcome could not be recorded, so whether it took effect is unknown. Check the resource before retrying under a new Idempotency-Key; this key keeps answering this until the broker records the call as unknown_outcome.`,
    {
      request_id: call.requestId,
      call_status: 'unknown_outcome',
      action: call.action,
      receipt: call.receipt,
      duration_ms: call.observed.durationMs,
      cause: storageCause(cause),
    },
  );
  return { status: err.status, body: JSON.stringify(problemBody(err, instance)), headers: { 'content-type': 'application/problem+json' } };
}

/** The storage error's message: an `audit_unavailable` ApiError's `cause`, else the error's message. */
export function storageCause(err: unknown): string {
  if (err instanceof ApiError) return String(err.extensions['cause'] ?? err.detail);
  return err instanceof Error ? err.message : String(err);
}

/** What {@link UnrecordedOutcomes} writes with. */
export interface UnrecordedDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  store: CallStore;
  commits: GroupCommit;
}

/**
 * The calls of this process whose outcome is unrecorded, keyed like the inflight set
 * (`group\n requestId`), each with its background write; see the module note.
 */
export class UnrecordedOutcomes {
  private readonly calls = new Map<string, UnrecordedCall>();

  constructor(private readonly deps: UnrecordedDeps) {}

  /** The unrecorded call under this key, or undefined (never failed, or written since). */
  get(key: string): UnrecordedCall | undefined {
    return this.calls.get(key);
  }

  /** How many calls are waiting for their `unknown_outcome` row. */
  get size(): number {
    return this.calls.size;
  }

  /**
   * Remembers `call` under `key` and starts writing its `unknown_outcome` row in the background.
   * The retry stops when the row commits, when the row is no longer `running` (another process's
   * recovery ended it), or when the database is closed (shutdown: the row stays `running` for
   * recovery at the next start). Its timers are unref'd, so it never keeps the process alive.
   * @returns a promise settled when the background write ends (never rejects; for tests and logs).
   */
  add(key: string, call: UnrecordedCall): Promise<void> {
    this.calls.set(key, call);
    const log = this.deps.logger.child({ group: call.group, request_id: call.requestId, action: call.action });
    return pRetry(() => this.writeEnd(call), {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: RECORD_RETRY_MS.min,
      maxTimeout: RECORD_RETRY_MS.max,
      factor: 2,
      unref: true,
      onFailedAttempt: ({ error, attemptNumber }) => {
        if (attemptNumber === 1) log.warn({ err: error.message }, 'cannot record the call as unknown_outcome yet; retrying in the background');
      },
    }).then(
      (written) => {
        this.calls.delete(key);
        if (written) log.warn('call whose outcome could not be recorded is now unknown_outcome');
      },
      (err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'stopped retrying; the call stays running until recovery at the next start'),
    );
  }

  /**
   * One attempt: ends the call `unknown_outcome` with its audit row through the group commit.
   * @returns true when written, false when the row was ended elsewhere meanwhile.
   * @throws the storage error (retried), or AbortError when the database is closed.
   */
  private async writeEnd(call: UnrecordedCall): Promise<boolean> {
    const { db, clock, store, commits } = this.deps;
    if (!db.sqlite.open) throw new AbortError('the database is closed');
    const now = clock.now();
    const response = JSON.stringify(
      unknownOutcomeBody(
        call.requestId,
        call.action,
        call.receipt,
        `${call.action} ran, but the broker could not record its outcome when it finished, so whether it took effect is unknown. Check the resource before trying again under a new Idempotency-Key; this key will keep answering unknown_outcome.`,
      ),
    );
    const o = call.observed;
    try {
      await commits.run({
        op: 'end',
        group: call.group,
        requestId: call.requestId,
        end: { status: 'unknown_outcome', httpStatus: 502, response, attempts: o.attempts, finishedAt: now, durationMs: o.durationMs },
        audit: {
          input: {
            actor: 'system',
            kind: 'call.unknown_outcome',
            subject: `call:${call.group}:${call.requestId}`,
            detail: {
              action: call.action,
              resource: call.resource,
              task_id: call.taskId,
              claimed_at: new Date(call.claimedAt).toISOString(),
              cause: 'outcome_unrecorded',
              observed: { status: o.status, http_status: o.httpStatus, code: o.code, attempts: o.attempts, duration_ms: o.durationMs },
            },
          },
          nowMs: now,
        },
      });
      return true;
    } catch (err) {
      if (!db.sqlite.open) throw new AbortError('the database is closed');
      const row = store.find(call.group, call.requestId);
      if (row === undefined || row.status !== 'running') return false;
      throw err;
    }
  }
}
