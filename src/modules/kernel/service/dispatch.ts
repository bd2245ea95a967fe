/**
 * The dispatch loop: moves READY tasks with an assigned group to DOING (an `execute` dispatch for
 * that group) and gated REVIEW tasks to APPROVAL (an `approve` dispatch for the gate's approver),
 * and the runner surface's reads and acks.
 *
 * Crash safety and idempotency: each dispatch is one store write (`TaskStore.dispatch`, one
 * transaction) that re-reads the task, applies its transition (a versioned update), inserts the
 * dispatch under `UNIQUE(dispatch_key)` = `<task id>:<target state>:<task version>`, and writes
 * the audit rows. A second loop (another connection or process) either waits for that transaction
 * and then finds the task moved on, or is refused by the unique key; a crash rolls the whole
 * transaction back.
 *
 * When a dispatch is due and what it writes live in `dispatch-plan.ts`: `main` moving a gated task
 * REVIEW → APPROVAL by hand records the same `approve` dispatch, under the same key, in its own
 * transaction (see `transitionTask`), and the loop never looks at APPROVAL tasks, so the two never
 * double a dispatch.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Config } from '../../../platform/config.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { Logger } from '../../../platform/log.js';
import { dispatchWrite, planFor, type DispatchKind } from '../dispatch-plan.js';
import { newId, type DispatchRow } from '../model.js';
import type { TaskState } from '../schema.js';
import type { DispatchFilter, RowPage } from '../store.js';
import type { KernelDeps } from './common.js';
import { planMove } from './transition.js';

export type { DispatchFilter } from '../store.js';

/**
 * Work-in-progress limits: at most `perGroup` tasks in DOING per assigned group and `total` in all.
 * An `execute` dispatch that would exceed one waits for a later pass; `approve` dispatches are
 * never held back.
 */
export interface WipLimits {
  perGroup: number;
  total: number;
}

/** What the loop runs on: the kernel's deps, its pass interval, a logger, and WIP limits (none: no limit). */
export type DispatchDeps = KernelDeps & { config: Pick<Config, 'dispatchIntervalMs'>; logger: Logger; wip?: WipLimits | undefined };

const PRIORITY_RANK: Record<string, number> = { P0: 0, P1: 1, P2: 2, P3: 3 };

/** Tasks in DOING now, by assigned group, and their total. */
async function doingCounts(deps: Pick<KernelDeps, 'tasks'>): Promise<{ byGroup: Map<string, number>; total: number }> {
  const byGroup = new Map<string, number>();
  let total = 0;
  let after: string | undefined;
  for (;;) {
    const page = await deps.tasks.list({ state: 'DOING', limit: 200, ...(after ? { startingAfter: after } : {}) });
    for (const t of page.rows) {
      total += 1;
      if (t.assignedGroup !== null) byGroup.set(t.assignedGroup, (byGroup.get(t.assignedGroup) ?? 0) + 1);
    }
    if (!page.hasMore) return { byGroup, total };
    after = page.rows.at(-1)!.id;
  }
}

/**
 * The candidates of a pass under WIP limits: highest priority first (P0 before P3), then oldest
 * (id order); READY tasks whose group or the whole kernel is at its limit are left for a later
 * pass, counting the ones admitted before them in this pass.
 */
async function admitted(deps: DispatchDeps & { wip: WipLimits }, ids: string[]): Promise<string[]> {
  const rows = (await Promise.all(ids.map((id) => deps.tasks.find(id)))).filter((r) => r !== null);
  rows.sort((a, b) => (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const { byGroup, total } = await doingCounts(deps);
  let doing = total;
  const out: string[] = [];
  for (const row of rows) {
    const plan = planFor(row);
    if (plan?.kind === 'execute') {
      const inGroup = byGroup.get(plan.group) ?? 0;
      if (inGroup >= deps.wip.perGroup || doing >= deps.wip.total) continue;
      byGroup.set(plan.group, inGroup + 1);
      doing += 1;
    }
    out.push(row.id);
  }
  return out;
}

/** A dispatch as the API answers (times RFC 3339 UTC). */
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

/**
 * Dispatches one task if it still needs it ({@link planFor}), in one transaction: the move as
 * `system` (its `task.transition` row carries the `dispatch_id`), the dispatch row, and its
 * `dispatch.created` row.
 * @returns the new dispatch, or null when the task no longer needs one (another loop got there).
 * @throws ApiError 503 `audit_unavailable` and engine errors (nothing is written).
 */
export function dispatchTask(deps: KernelDeps, taskId: string): Promise<DispatchRow | null> {
  return deps.tasks.dispatch(taskId, (row) => {
    const plan = row && planFor(row);
    if (!row || !plan) return null;
    const nowMs = deps.clock.now();
    const id = newId(nowMs);
    const move = planMove(deps, row, 'system', { to: plan.to }, nowMs, { detail: { dispatch_id: id } });
    const dispatch = dispatchWrite(row, plan, 'system', nowMs, id);
    return { nowMs, patch: move.patch, dispatch: dispatch.row, activities: [move.activity, dispatch.activity] };
  });
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
 * One pass of the dispatch loop over every dispatchable task, oldest first (under WIP limits:
 * highest priority first, then oldest, and only as many READY tasks as the limits leave room for),
 * one transaction per task, yielding to the event loop between tasks so requests keep flowing. Safe to run from any
 * number of connections or processes at once. Stops early when `signal` aborts.
 */
export async function runDispatchOnce(deps: DispatchDeps, signal?: AbortSignal): Promise<DispatchRunResult> {
  const candidates = await deps.tasks.dispatchCandidates();
  const wip = deps.wip;
  const ids = wip ? await admitted({ ...deps, wip }, candidates) : candidates;
  const result: DispatchRunResult = { examined: ids.length, dispatched: [], failed: 0 };
  for (const id of ids) {
    if (signal?.aborted) break;
    try {
      const d = await dispatchTask(deps, id);
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

/** A group's dispatches, oldest first; `hasMore` when another page follows. */
export function listDispatches(deps: Pick<KernelDeps, 'tasks'>, filter: DispatchFilter): Promise<RowPage<DispatchRow>> {
  return deps.tasks.listDispatches(filter);
}

/**
 * Acknowledges a dispatch for its group (the runner started the work). Idempotent: acking an acked
 * dispatch returns it unchanged and writes no second audit row. Otherwise sets it `acked` with a
 * `dispatch.acked` audit row (`{dispatch_id, dispatch_key}`, subject the task id).
 * @throws ApiError 404 `not_found` when there is no such dispatch for this group (another group's
 *   dispatches are not revealed); 503 `audit_unavailable`.
 */
export function ackDispatch(deps: Pick<KernelDeps, 'tasks' | 'clock'>, id: string, group: string): Promise<DispatchRow> {
  return deps.tasks.ackDispatch(id, (d) => {
    if (!d || d.group !== group) throw new ApiError('not_found', `No dispatch ${id} for ${group}.`);
    if (d.status === 'acked') return null;
    return { nowMs: deps.clock.now(), activities: [{ actor: group, kind: 'dispatch.acked', subject: d.taskId, detail: { dispatch_id: id, dispatch_key: d.dispatchKey } }] };
  });
}
