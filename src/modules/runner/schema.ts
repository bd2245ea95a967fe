import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * A run's status: `claimed` (row committed, process not yet started), `running` (spawned, `pid`
 * set), then one terminal status: `succeeded` (exit 0), `failed` (non-zero exit or spawn error),
 * `timed_out` (killed with its process group after `timeout_s`), `cancelled` (`POST
 * /v1/runs/{id}/cancel`), `interrupted` (the broker stopped while it was claimed or running; found
 * at the next start).
 */
export type RunStatus = 'claimed' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'interrupted';

/**
 * `runs`: one row per dispatch whose group has a runner (`policies/runners.json`). The row is
 * committed before the process is spawned and `dispatch_key` is unique, so a dispatch starts its
 * runner at most once however often the broker restarts. Times are Unix ms.
 */
export const runs = sqliteTable(
  'runs',
  {
    /** ULID. */
    id: text('id').primaryKey(),
    dispatchKey: text('dispatch_key').notNull().unique(),
    dispatchId: text('dispatch_id').notNull(),
    taskId: text('task_id').notNull(),
    group: text('group').notNull(),
    status: text('status').$type<RunStatus>().notNull(),
    /** The spawned process (and process group) id while running. */
    pid: integer('pid'),
    exitCode: integer('exit_code'),
    /** The signal that ended it (SIGKILL after a timeout), or null. */
    signal: text('signal'),
    /** The last lines of stdout and stderr, redacted. */
    outputTail: text('output_tail'),
    /** Where the context pack was written. */
    contextFile: text('context_file'),
    createdAt: integer('created_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [index('runs_status_idx').on(t.status, t.id), index('runs_task_idx').on(t.taskId, t.id)],
);
