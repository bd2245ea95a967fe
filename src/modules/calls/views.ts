/**
 * Read views of calls shared by the routes, the CLI and the kernel's task context: the API shape
 * of a stored call (snake_case, RFC 3339 times).
 */
import type { CallRow, CallStatus, CallStore } from './store.js';

/**
 * A call as the API shows it. `response` is the answer sent (and replayed), null while running;
 * `receipt` is the final receipt (the claim-time one while running).
 */
export interface CallView {
  request_id: string;
  group: string;
  action: string;
  level: number;
  resource: string;
  summary: string;
  task_id: string | null;
  grant_id: string;
  status: CallStatus;
  http_status: number | null;
  attempts: number;
  created_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  receipt: unknown;
  response: unknown;
}

/** Renders a row; `full` adds the receipt and the stored answer. */
export function callView(row: CallRow, full = true): CallView | Omit<CallView, 'receipt' | 'response'> {
  const view = {
    request_id: row.requestId,
    group: row.group,
    action: row.action,
    level: row.level,
    resource: row.resource,
    summary: row.summary,
    task_id: row.taskId,
    grant_id: row.grantId,
    status: row.status,
    http_status: row.httpStatus,
    attempts: row.attempts,
    created_at: new Date(row.createdAt).toISOString(),
    finished_at: row.finishedAt === null ? null : new Date(row.finishedAt).toISOString(),
    duration_ms: row.durationMs,
  };
  if (!full) return view;
  const response = row.response === null ? null : (JSON.parse(row.response) as { receipt?: unknown });
  return { ...view, receipt: response?.receipt ?? (JSON.parse(row.receipt) as unknown), response };
}

/**
 * The external calls coupled to a task, oldest first (the `external_calls` of
 * `GET /v1/tasks/{id}/context`): each call's summary view, without receipts or results.
 * @param limit at most this many (default 200).
 */
export async function callsForTask(store: CallStore, taskId: string, limit = 200): Promise<Omit<CallView, 'receipt' | 'response'>[]> {
  const rows = await store.list({ taskId, limit });
  return rows.reverse().map((r) => callView(r, false));
}
