/**
 * The decision path's reads of the database (step 3's call row, the operators' active kill
 * switches, step 11's coupled task) on an engine without synchronous reads (PostgreSQL): read
 * before the synchronous decision, which then answers from them. What the prefetch reads is as of the request's arrival or later; what this
 * process changes between the prefetch and the decision is in memory (the inflight keys, checked
 * in the same no-await window as the claim), and what another replica claims meanwhile is refused
 * by the claim's primary key (`DuplicateClaim`), then answered from the row read again.
 */
import type { CouplingTask } from '../kernel/coupling.js';
import type { TaskStore } from '../kernel/store.js';
import type { KillSwitchRow, SwitchStore } from '../switches/store.js';
import type { CallRow, CallStore } from './store.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Step 3's row, the active switches and step 11's task, read before the decision. */
export interface DecisionReads {
  /** The call with the request's (group, Idempotency-Key), or undefined. */
  row: CallRow | undefined;
  /** Every switch not cleared, oldest first, read for this request; undefined when there is no switch store. */
  switches?: KillSwitchRow[];
  /** The body's `task_id` when it is a string, else null. */
  taskId: string | null;
  /** That task's coupling facts; null when no task was named or there is none. */
  task: CouplingTask | null;
}

/**
 * The `task_id` of a call body, read leniently (step 2 still validates the body): the string
 * value, or null for anything else (malformed JSON, another type, absent).
 */
export function bodyTaskId(raw: Uint8Array): string | null {
  try {
    const json = JSON.parse(utf8.decode(raw)) as { task_id?: unknown } | null;
    return typeof json?.task_id === 'string' ? json.task_id : null;
  } catch {
    return null;
  }
}

/**
 * Reads the call's row, the active kill switches (every call reads them from the database, so a
 * switch set through any replica applies from the next call) and the named task, concurrently.
 * @throws (rejects) the stores' errors (503 `service_unavailable` when the database cannot be
 *   read): nothing is decided then.
 */
export async function readForDecision(
  stores: { calls: CallStore; tasks: Pick<TaskStore, 'find'>; switches?: Pick<SwitchStore, 'activeNow'> },
  call: { group: string; requestId: string; rawBody: Uint8Array },
): Promise<DecisionReads> {
  const taskId = bodyTaskId(call.rawBody);
  const [row, switches, task] = await Promise.all([
    stores.calls.find(call.group, call.requestId),
    stores.switches?.activeNow(),
    taskId === null ? null : stores.tasks.find(taskId),
  ]);
  return { row, switches, taskId, task: task ? { id: task.id, state: task.state, assignedGroup: task.assignedGroup } : null };
}
