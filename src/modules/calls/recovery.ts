/**
 * Crash recovery (the design's "Crash recovery"): calls still `running` whose broker process stopped
 * (its instance lease, `broker_instances`, expired or was never taken) were interrupted by a stop
 * or a crash, so whether they took effect is unknown. They become `unknown_outcome`, are never
 * executed again, and a retry with their key replays 502 `unknown_outcome`.
 */
import { appendActivity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError, problemBody } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Receipt } from './decision/receipt.js';
import { CallStore } from './store.js';

/**
 * The problem body (502 `unknown_outcome`, `call_status: "unknown_outcome"`) a call whose outcome
 * is unknown answers and replays with: one interrupted by a crash, or one whose outcome could not
 * be recorded (`detail` then says so).
 */
export function unknownOutcomeBody(requestId: string, action: string, receipt: Receipt, detail?: string): Record<string, unknown> {
  const err = new ApiError(
    'unknown_outcome',
    detail ??
      `The broker stopped while ${action} was running, so whether it took effect is unknown. Check the resource before trying again under a new Idempotency-Key; this key will keep answering unknown_outcome.`,
    { request_id: requestId, call_status: 'unknown_outcome', action, receipt },
  );
  return problemBody(err, '/v1/ext/calls');
}

/** A running call whose owner holds no live lease, and that owner (null on rows from before leases). */
interface Orphan {
  group: string;
  requestId: string;
  instanceId: string | null;
}

/**
 * Marks `unknown_outcome` (502) every `running` call whose owner (`ext_calls.instance_id`) holds
 * no live lease in `broker_instances` (expired, released, or never recorded), except the calls of
 * `self`, each with a `call.unknown_outcome` audit row (actor `system`), and deletes the expired
 * leases, in one transaction. Calls owned by a live instance are never touched, so a process that
 * starts beside a live one (or a replica) cannot take over calls still running there. Run by a
 * serving process after it took its own lease, before it listens, and then periodically, so the
 * calls of an instance that died are marked once its lease expires (`BROKER_LEASE_TTL_MS`).
 * Never run by a CLI command.
 * @param self the calling process's instance id (its own calls end through its call path).
 * @returns the number of calls marked.
 * @throws ApiError 503 `audit_unavailable` when the audit rows cannot be written (nothing changes).
 */
export function recoverInterruptedCalls(deps: { db: Db; clock: Clock; logger: Logger }, self: string): number {
  const store = new CallStore(deps.db);
  const orphans = (now: number) =>
    deps.db.sqlite
      .prepare(
        `SELECT c."group", c.request_id AS requestId, c.instance_id AS instanceId FROM ext_calls c
         WHERE c.status = 'running' AND c.instance_id IS NOT @self
           AND NOT EXISTS (SELECT 1 FROM broker_instances i WHERE i.id = c.instance_id AND i.lease_until > @now)
         ORDER BY c.created_at, c."group", c.request_id`,
      )
      .all({ self, now }) as Orphan[];
  const expired = (now: number) =>
    deps.db.sqlite.prepare('SELECT id, pid, host FROM broker_instances WHERE lease_until <= ? AND id <> ?').all(now, self) as { id: string; pid: number; host: string }[];
  const first = deps.clock.now();
  if (orphans(first).length === 0 && expired(first).length === 0) return 0; // the common case writes nothing (and works on a read-only database)
  const { marked, dead } = immediate(deps.db, () => {
    const now = deps.clock.now();
    const running = orphans(now);
    const dead = expired(now);
    for (const { group, requestId, instanceId } of running) {
      const row = store.find(group, requestId)!;
      const receipt = JSON.parse(row.receipt) as Receipt;
      receipt.steps.push({ step: 'execute', result: 'fail', note: 'unknown_outcome: interrupted by a broker stop' });
      const response = JSON.stringify(unknownOutcomeBody(requestId, row.action, receipt));
      store.end(group, requestId, {
        status: 'unknown_outcome',
        httpStatus: 502,
        response,
        attempts: row.attempts,
        finishedAt: now,
        durationMs: null,
      });
      appendActivity(
        deps.db,
        {
          actor: 'system',
          kind: 'call.unknown_outcome',
          subject: `call:${group}:${requestId}`,
          detail: { action: row.action, resource: row.resource, task_id: row.taskId, claimed_at: new Date(row.createdAt).toISOString(), instance: instanceId },
        },
        now,
      );
    }
    const drop = deps.db.sqlite.prepare('DELETE FROM broker_instances WHERE id = ? AND lease_until <= ?');
    for (const d of dead) drop.run(d.id, now);
    return { marked: running.length, dead };
  });
  if (dead.length > 0) deps.logger.warn({ instances: dead }, 'broker instances stopped without releasing their lease; their leases expired');
  if (marked > 0) deps.logger.warn({ calls: marked }, 'calls interrupted by a broker stop marked unknown_outcome; see broker calls list --status unknown_outcome');
  return marked;
}
