/**
 * Crash recovery (issue 4, "Crash recovery"): at start-up, calls still `running` were interrupted
 * by a stop or a crash, so whether they took effect is unknown. They become `unknown_outcome`,
 * are never executed again, and a retry with their key replays 502 `unknown_outcome`.
 */
import { appendActivity } from '../../audit/trail.js';
import type { Clock } from '../../clock.js';
import { immediate, type Db } from '../../db/open.js';
import { ApiError, problemBody } from '../../http/problem.js';
import type { Logger } from '../../log.js';
import type { Receipt } from '../decision/receipt.js';
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

/**
 * Marks every `running` call `unknown_outcome` (502), each with a `call.unknown_outcome` audit row
 * (actor `system`), in one transaction. Run once at start-up, before the server accepts calls,
 * by the process that owns the database (never by a CLI command beside a live server).
 * @returns the number of calls marked.
 * @throws ApiError 503 `audit_unavailable` when the audit rows cannot be written (nothing changes).
 */
export function recoverInterruptedCalls(deps: { db: Db; clock: Clock; logger: Logger }): number {
  const store = new CallStore(deps.db);
  const findRunning = () =>
    deps.db.sqlite.prepare(`SELECT "group", request_id AS requestId FROM ext_calls WHERE status = 'running'`).all() as { group: string; requestId: string }[];
  if (findRunning().length === 0) return 0; // the common case writes nothing (and works on a read-only database)
  const marked = immediate(deps.db, () => {
    const now = deps.clock.now();
    const running = findRunning();
    for (const { group, requestId } of running) {
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
          detail: { action: row.action, resource: row.resource, task_id: row.taskId, claimed_at: new Date(row.createdAt).toISOString() },
        },
        now,
      );
    }
    return running.length;
  });
  if (marked > 0) deps.logger.warn({ calls: marked }, 'calls interrupted by the last stop marked unknown_outcome; see broker calls list --status unknown_outcome');
  return marked;
}
