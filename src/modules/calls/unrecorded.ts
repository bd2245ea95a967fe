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
 *   `unknownOutcomeBody`, a `call.unknown_outcome` audit row by `system`: `unknownOutcomeRecord`,
 *   as crash recovery ends calls), retried with a capped exponential backoff (`p-retry`) until it
 *   commits, so no restart is needed once space returns. From then on the key replays that stored 502 `unknown_outcome`, as after crash
 *   recovery. If the process stops first, the row is still `running` and recovery ends it the same
 *   way at the next start.
 */
import pRetry, { AbortError } from 'p-retry';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/log.js';
import type { CallAnswer } from './answer.js';
import { unknownOutcomeRecord, type ClaimedCall } from './records.js';
import type { CallStatus, CallStore } from './store.js';

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
export interface UnrecordedCall extends ClaimedCall {
  /** SHA-256 hex of the request body (step 3's fingerprint). */
  fingerprint: string;
  observed: ObservedOutcome;
  /** The 502 `outcome_unrecorded` answer given, replayed to the key until the row is written. */
  answer: CallAnswer;
}

/** Backoff of the background write, ms: 100, 200, 400, … then every 5 s until it commits. */
export const RECORD_RETRY_MS = { min: 100, max: 5000 } as const;

/** What {@link UnrecordedOutcomes} writes with. */
export interface UnrecordedDeps {
  clock: Clock;
  logger: Logger;
  store: CallStore;
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
   * One attempt: ends the call `unknown_outcome` with its audit row ({@link unknownOutcomeRecord}).
   * @returns true when written, false when the row was ended elsewhere meanwhile.
   * @throws the storage error (retried), or AbortError when the database is closed.
   */
  private async writeEnd(call: UnrecordedCall): Promise<boolean> {
    const { clock, store } = this.deps;
    if (store.isClosed()) throw new AbortError('the database is closed');
    const o = call.observed;
    const { end, audit } = unknownOutcomeRecord(
      call,
      {
        detail: `${call.action} ran, but the broker could not record its outcome when it finished, so whether it took effect is unknown. Check the resource before trying again under a new Idempotency-Key; this key will keep answering unknown_outcome.`,
        attempts: o.attempts,
        durationMs: o.durationMs,
        audit: { cause: 'outcome_unrecorded', observed: { status: o.status, http_status: o.httpStatus, code: o.code, attempts: o.attempts, duration_ms: o.durationMs } },
      },
      clock.now(),
    );
    try {
      await store.end(call.group, call.requestId, end, audit);
      return true;
    } catch (err) {
      if (store.isClosed()) throw new AbortError('the database is closed');
      const row = await store.find(call.group, call.requestId);
      if (row === undefined || row.status !== 'running') return false;
      throw err;
    }
  }
}
