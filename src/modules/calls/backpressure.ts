/**
 * Step 4 of the decision order, backpressure, and the execution lanes it guards: each group has at
 * most `BROKER_MAX_PENDING_PER_GROUP` calls claimed and not yet ended in this process (queued or
 * running); one more is refused 429 `backpressure` with `Retry-After`, and other groups are not
 * affected. Claimed calls run through their group's queue (`p-queue`), at most
 * `BROKER_GROUP_CONCURRENCY` at a time.
 */
import PQueue from 'p-queue';
import type { Config } from '../../platform/config.js';
import { ApiError } from '../../platform/http/problem.js';
import { RETRY_AFTER_S } from './answer.js';
import type { Receipt } from './decision/receipt.js';

/** Each group's pending calls and execution queue, in this process. */
export class GroupLanes {
  private readonly pending = new Map<string, number>();
  private readonly queues = new Map<string, PQueue>();

  constructor(private readonly config: Pick<Config, 'maxPendingPerGroup' | 'groupConcurrency'>) {}

  /** Calls of `group` claimed and not yet ended in this process (queued or running). */
  pendingFor(group: string): number {
    return this.pending.get(group) ?? 0;
  }

  /**
   * Step 4: records the step in `receipt` and returns the group's pending count when one more call
   * fits, or the 429 `backpressure` refusal (`{pending, limit}`, `Retry-After`) when it does not.
   */
  check(group: string, receipt: Receipt): number | ApiError {
    const pending = this.pendingFor(group);
    const limit = this.config.maxPendingPerGroup;
    if (pending >= limit) return backpressureRefusal(group, pending, limit, receipt);
    receipt.steps.push({ step: 'backpressure', result: 'pass', note: `${pending} pending, limit ${limit}` });
    return pending;
  }

  /** Counts a call being claimed (part of the claim, before any await); `pending` is what {@link check} returned. */
  take(group: string, pending: number): void {
    this.pending.set(group, pending + 1);
  }

  /** Counts a call out: its claim failed, or its outcome is stored (or handed over as unrecorded). */
  release(group: string): void {
    const n = (this.pending.get(group) ?? 1) - 1;
    if (n > 0) this.pending.set(group, n);
    else this.pending.delete(group);
  }

  /** Runs `task` in `group`'s queue (at most `groupConcurrency` at a time). */
  run<T>(group: string, task: () => Promise<T>): Promise<T> {
    let q = this.queues.get(group);
    if (!q) this.queues.set(group, (q = new PQueue({ concurrency: this.config.groupConcurrency })));
    return q.add(task) as Promise<T>;
  }
}

/**
 * Step 4's refusal: records the failed step in `receipt` and returns 429 `backpressure`
 * (`{pending, limit}`, `Retry-After`). Also the answer to a claim the store refused because the
 * group's pending calls across replicas reached the limit (`GroupBackpressure`).
 */
export function backpressureRefusal(group: string, pending: number, limit: number, receipt: Receipt): ApiError {
  receipt.steps.push({ step: 'backpressure', result: 'fail', note: `${pending} pending, limit ${limit}` });
  return new ApiError(
    'backpressure',
    `Group ${group} already has ${pending} calls queued or running (limit ${limit}); retry in ${RETRY_AFTER_S} s with the same Idempotency-Key.`,
    { pending, limit },
    { 'Retry-After': String(RETRY_AFTER_S) },
  );
}
