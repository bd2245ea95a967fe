/** How the API and CLI show a run (times RFC 3339 UTC, durations in ms). */
import type { RunStatus } from './schema.js';
import type { RunRow } from './store.js';

/** A run as the API answers it. */
export interface RunJson {
  id: string;
  dispatch_id: string;
  dispatch_key: string;
  task_id: string;
  group: string;
  status: RunStatus;
  pid: number | null;
  exit_code: number | null;
  signal: string | null;
  /** The last lines of the process's output, redacted. */
  output_tail: string | null;
  context_file: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** finished − started, in ms; null while running or when it never started. */
  duration_ms: number | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Renders a `runs` row. */
export function runJson(r: RunRow): RunJson {
  return {
    id: r.id,
    dispatch_id: r.dispatchId,
    dispatch_key: r.dispatchKey,
    task_id: r.taskId,
    group: r.group,
    status: r.status,
    pid: r.pid,
    exit_code: r.exitCode,
    signal: r.signal,
    output_tail: r.outputTail,
    context_file: r.contextFile,
    created_at: new Date(r.createdAt).toISOString(),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    duration_ms: r.startedAt !== null && r.finishedAt !== null ? r.finishedAt - r.startedAt : null,
  };
}
