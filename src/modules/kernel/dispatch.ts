/**
 * The dispatch loop (issue 3, "Dispatch"): moves READY tasks with an assigned group to DOING (an
 * `execute` dispatch for that group) and gated REVIEW tasks to APPROVAL (an `approve` dispatch for
 * the gate's approver), and the runner surface's reads and acks.
 *
 * Crash safety and idempotency: each dispatch is one `BEGIN IMMEDIATE` transaction that re-reads
 * the task, applies its transition (a versioned update), inserts the dispatch under
 * `UNIQUE(dispatch_key)` = `<task id>:<target state>:<task version>`, and writes the audit rows.
 * A second loop (another connection or process) either waits for that transaction and then finds
 * the task moved on, or is refused by the unique key; a crash rolls the whole transaction back.
 *
 * When a dispatch is due and how it is written live in `dispatch-record.ts` (re-exported here):
 * `main` moving a gated task REVIEW → APPROVAL by hand records the same `approve` dispatch, under
 * the same key, in its own transaction (see `transitionTask`), and the loop never looks at APPROVAL
 * tasks, so the two never double a dispatch.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { and, asc, eq, gt, type SQL } from 'drizzle-orm';
import { appendActivity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../../platform/config.js';
import type { Db } from '../../platform/db/open.js';
import { immediate } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Groups } from '../identity/groups.js';
import type { TaskState } from './coupling.js';
import { planFor, recordDispatch, type DispatchKind, type DispatchRow } from './dispatch-record.js';
import { newId } from './model.js';
import { taskDispatches } from './schema.js';
import { applyTransition, findTask } from './tasks.js';

export { approvePlan, dispatchKey, executePlan, planFor, recordDispatch, type DispatchKind, type DispatchPlan, type DispatchRow } from './dispatch-record.js';

/** What the loop runs on. */
export type DispatchDeps = { db: Db; clock: Clock; groups: Groups; config: Config; logger: Logger };

/** A dispatch as the API answers. */
export interface DispatchJson {
  id: string;
  dispatch_key: string;
  task_id: string;
  kind: DispatchKind;
  group: string;
  target_state: TaskState;
  task_version: number;
  status: 'pending' | 'acked';
  created_at: string;
  acked_at: string | null;
}

/** Renders a dispatch row. */
export function dispatchJson(d: DispatchRow): DispatchJson {
  return {
    id: d.id,
    dispatch_key: d.dispatchKey,
    task_id: d.taskId,
    kind: d.kind as DispatchKind,
    group: d.group,
    target_state: d.targetState as TaskState,
    task_version: d.taskVersion,
    status: d.status as 'pending' | 'acked',
    created_at: new Date(d.createdAt).toISOString(),
    acked_at: d.ackedAt === null ? null : new Date(d.ackedAt).toISOString(),
  };
}

/** The tasks {@link planFor} may dispatch, as one query (keep the two in step). */
const CANDIDATES_SQL = `SELECT id FROM tasks
  WHERE (state = 'READY' AND assigned_group IS NOT NULL)
     OR (state = 'REVIEW' AND gate <> 'none' AND gate_status = 'pending')
  ORDER BY id`;

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Dispatches one task if it still needs it, in one transaction.
 * @returns the new dispatch, or null when the task no longer needs one (another loop got there).
 * @throws ApiError 503 `audit_unavailable` and SQLite errors (the transaction is rolled back).
 */
export function dispatchTask(deps: DispatchDeps, taskId: string): DispatchRow | null {
  const { db, clock } = deps;
  try {
    return immediate(db, () => {
      const row = findTask(db, taskId);
      const plan = row && planFor(row);
      if (!row || !plan) return null;
      const nowMs = clock.now();
      const id = newId(nowMs);
      applyTransition(deps, row, 'system', { to: plan.to }, { detail: { dispatch_id: id } });
      return recordDispatch(db, row, plan, 'system', nowMs, id);
    });
  } catch (err) {
    if (isUniqueViolation(err) || (err instanceof ApiError && err.code === 'precondition_failed')) return null;
    throw err;
  }
}

/** What one pass of the loop did. */
export interface DispatchRunResult {
  /** Tasks that looked dispatchable when the pass started. */
  examined: number;
  /** Dispatches this pass created. */
  dispatched: DispatchRow[];
  /** Tasks whose dispatch failed (logged; retried on the next pass). */
  failed: number;
}

/**
 * One pass of the dispatch loop over every dispatchable task, oldest first, one transaction per
 * task, yielding to the event loop between tasks so requests keep flowing. Safe to run from any
 * number of connections or processes at once. Stops early when `signal` aborts.
 */
export async function runDispatchOnce(deps: DispatchDeps, signal?: AbortSignal): Promise<DispatchRunResult> {
  const ids = (deps.db.sqlite.prepare(CANDIDATES_SQL).all() as { id: string }[]).map((r) => r.id);
  const result: DispatchRunResult = { examined: ids.length, dispatched: [], failed: 0 };
  for (const id of ids) {
    if (signal?.aborted) break;
    try {
      const d = dispatchTask(deps, id);
      if (d) result.dispatched.push(d);
    } catch (err) {
      result.failed += 1;
      deps.logger.error({ task_id: id, err: err instanceof ApiError ? err.message : err }, 'dispatch failed; retrying on the next pass');
    }
    await yieldToEventLoop();
  }
  if (result.dispatched.length > 0 || result.failed > 0) {
    deps.logger.info({ examined: result.examined, dispatched: result.dispatched.length, failed: result.failed }, 'dispatch pass');
  }
  return result;
}

/**
 * Starts the dispatch loop: a pass now, then one every `config.dispatchIntervalMs` ms (a pass
 * still running is not overlapped).
 * @returns stop(): no new passes; a pass in progress ends after its current task.
 */
export function startDispatchLoop(deps: DispatchDeps): () => void {
  const controller = new AbortController();
  let running = false;
  const tick = () => {
    if (running || controller.signal.aborted) return;
    running = true;
    runDispatchOnce(deps, controller.signal)
      .catch((err: unknown) => deps.logger.error({ err }, 'dispatch pass failed'))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, deps.config.dispatchIntervalMs);
  return () => {
    controller.abort();
    clearInterval(timer);
  };
}

/** Filters for {@link listDispatches}. */
export interface DispatchFilter {
  group: string;
  status?: 'pending' | 'acked';
  limit: number;
  startingAfter?: string;
}

/** A group's dispatches, oldest first; `hasMore` when another page follows. */
export function listDispatches(db: Db, f: DispatchFilter): { rows: DispatchRow[]; hasMore: boolean } {
  const where: SQL[] = [eq(taskDispatches.group, f.group)];
  if (f.status) where.push(eq(taskDispatches.status, f.status));
  if (f.startingAfter) where.push(gt(taskDispatches.id, f.startingAfter));
  const rows = db.orm
    .select()
    .from(taskDispatches)
    .where(and(...where))
    .orderBy(asc(taskDispatches.id))
    .limit(f.limit + 1)
    .all();
  return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
}

/**
 * Acknowledges a dispatch for its group (the runner started the work). Idempotent: acking an acked
 * dispatch returns it unchanged and writes no second audit row.
 * @throws ApiError 404 `not_found` when there is no such dispatch for this group (another group's
 *   dispatches are not revealed); 503 `audit_unavailable`.
 */
export function ackDispatch(deps: Pick<DispatchDeps, 'db' | 'clock'>, id: string, group: string): DispatchRow {
  const { db, clock } = deps;
  return immediate(db, () => {
    const d = db.orm.select().from(taskDispatches).where(eq(taskDispatches.id, id)).get();
    if (!d || d.group !== group) throw new ApiError('not_found', `No dispatch ${id} for ${group}.`);
    if (d.status === 'acked') return d;
    const nowMs = clock.now();
    const acked = db.orm
      .update(taskDispatches)
      .set({ status: 'acked', ackedAt: nowMs })
      .where(and(eq(taskDispatches.id, id), eq(taskDispatches.status, 'pending')))
      .returning()
      .get()!;
    appendActivity(db, { actor: group, kind: 'dispatch.acked', subject: d.taskId, detail: { dispatch_id: id, dispatch_key: d.dispatchKey } }, nowMs);
    return acked;
  });
}
