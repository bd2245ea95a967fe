/**
 * Step 3 of the decision order, the Idempotency-Key: the key (group, request id) of a call and the
 * SHA-256 of its body decide whether the call is new, a replay of a finished call, a conflict
 * with a call still running here (the inflight set), or a reuse of the key for another body.
 * Only a claimed call uses up its key; a refused one leaves it unused.
 *
 * The check reads memory first (the inflight set, the unrecorded outcomes), then the call's row
 * (one primary-key read), synchronously: nothing may await between this check
 * and the claim, so two requests with one key cannot both pass it in this process (the claim's
 * primary key settles it across processes).
 */
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { replayAnswer, replayed, RETRY_AFTER_S, type CallAnswer } from './answer.js';
import type { Receipt } from './decision/receipt.js';
import type { CallKeyReader, CallRow } from './store.js';
import type { UnrecordedOutcomes } from './unrecorded.js';

/** The call whose key is checked: its group, Idempotency-Key and the request's logger. */
export interface KeyedCall {
  group: string;
  requestId: string;
  log: Logger;
}

/**
 * The keys of this process's calls from the claim until their outcome is stored, with the body
 * fingerprint each was claimed with, and the step-3 check against them and the rows.
 */
export class CallKeys {
  /** `group\n requestId` → fingerprint, from the claim until the outcome is stored. */
  private readonly inflight = new Map<string, string>();

  constructor(
    /** The synchronous row read (SQLite); without it every check is given the row read before. */
    private readonly store: CallKeyReader | undefined,
    private readonly unrecorded: UnrecordedOutcomes,
  ) {}

  /** The in-memory key of a call: `group\n requestId`. */
  static of(group: string, requestId: string): string {
    return `${group}\n${requestId}`;
  }

  /**
   * Step 3 for a key seen before: 422 `idempotency_key_reused` for another body, 409
   * `request_in_flight` while it runs, the 502 `outcome_unrecorded` answer again while its outcome
   * is unrecorded, otherwise the stored answer replayed. Undefined for a new key. Records a failed
   * step in `receipt`; the caller records the pass. A key neither in flight here nor unrecorded is
   * looked up by its row: `readRow` when given (the row read before the decision), else the store's
   * synchronous read.
   * @throws Error when there is neither.
   */
  check(c: KeyedCall, key: string, fingerprint: string, receipt: Receipt, readRow?: () => CallRow | undefined): CallAnswer | ApiError | undefined {
    const unrecorded = this.unrecorded.get(key);
    const live = unrecorded?.fingerprint ?? this.inflight.get(key);
    let row: CallRow | undefined;
    let stored: string | undefined = live;
    if (live === undefined) {
      if (readRow) row = readRow();
      else if (this.store) row = this.store.findNow(c.group, c.requestId);
      else throw new Error('step 3 needs the call row read before the decision');
      stored = row?.fingerprint;
    }
    if (stored === undefined) return undefined;
    if (stored !== fingerprint) {
      receipt.steps.push({ step: 'idempotency', result: 'fail', note: 'idempotency_key_reused' });
      return new ApiError(
        'idempotency_key_reused',
        `The Idempotency-Key ${c.requestId} was already used with a different body; use a new key for a different call.`,
      );
    }
    if (unrecorded !== undefined) {
      c.log.info({ request_id: c.requestId, status: 'unknown_outcome' }, 'call replayed: its outcome is not recorded yet');
      return replayed(unrecorded.answer);
    }
    if (row === undefined || row.status === 'running' || row.httpStatus === null || row.response === null) {
      receipt.steps.push({ step: 'idempotency', result: 'fail', note: 'request_in_flight' });
      return new ApiError(
        'request_in_flight',
        `The call with Idempotency-Key ${c.requestId} is still running; retry after ${RETRY_AFTER_S} s with the same key to get its outcome.`,
        {},
        { 'Retry-After': String(RETRY_AFTER_S) },
      );
    }
    c.log.info({ request_id: c.requestId, status: row.status }, 'call replayed');
    return replayAnswer(row.httpStatus, row.response);
  }

  /** Holds `key` for a call being claimed (part of the claim, before any await). */
  hold(key: string, fingerprint: string): void {
    this.inflight.set(key, fingerprint);
  }

  /** Lets `key` go: its claim failed, or its outcome is stored (or handed to the unrecorded outcomes). */
  release(key: string): void {
    this.inflight.delete(key);
  }
}
