/**
 * Crash recovery (the design's "Crash recovery"): calls still `running` whose broker process stopped
 * (its instance lease, `broker_instances`, expired or was never taken) were interrupted by a stop
 * or a crash, so whether they took effect is unknown. They become `unknown_outcome`, are never
 * executed again, and a retry with their key replays 502 `unknown_outcome`.
 */
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/log.js';
import type { Receipt } from './decision/receipt.js';
import { unknownOutcomeRecord } from './records.js';
import type { CallStore } from './store.js';

/**
 * Marks `unknown_outcome` (502) every `running` call whose owner (`ext_calls.instance_id`) holds
 * no live lease in `broker_instances` (expired, released, or never recorded), except the calls of
 * `self`, each with a `call.unknown_outcome` audit row (actor `system`, `{action, resource,
 * task_id, claimed_at, instance}`), and deletes the expired leases, in one transaction
 * (`CallStore.endInterrupted`). Calls owned by a live instance are never touched, so a process that
 * starts beside a live one (or a replica) cannot take over calls still running there. Run by a
 * serving process after it took its own lease, before it listens, and then periodically, so the
 * calls of an instance that died are marked once its lease expires (`BROKER_LEASE_TTL_MS`).
 * Never run by a CLI command.
 * @param self the calling process's instance id (its own calls end through its call path).
 * @returns the number of calls marked.
 * @throws (rejects) ApiError 503 `audit_unavailable` when the audit rows cannot be written
 *   (nothing changes).
 */
export async function recoverInterruptedCalls(deps: { stores: { calls: CallStore }; clock: Clock; logger: Logger }, self: string): Promise<number> {
  const store = deps.stores.calls;
  const { marked, expired } = await store.endInterrupted(
    self,
    () => deps.clock.now(),
    (row, now) => {
      const receipt = JSON.parse(row.receipt) as Receipt;
      receipt.steps.push({ step: 'execute', result: 'fail', note: 'unknown_outcome: interrupted by a broker stop' });
      const call = { group: row.group, requestId: row.requestId, action: row.action, resource: row.resource, taskId: row.taskId, claimedAt: row.createdAt, receipt };
      return unknownOutcomeRecord(call, { attempts: row.attempts, durationMs: null, audit: { instance: row.instanceId } }, now);
    },
  );
  if (expired.length > 0) deps.logger.warn({ instances: expired }, 'broker instances stopped without releasing their lease; their leases expired');
  if (marked > 0) deps.logger.warn({ calls: marked }, 'calls interrupted by a broker stop marked unknown_outcome; see broker calls list --status unknown_outcome');
  return marked;
}
