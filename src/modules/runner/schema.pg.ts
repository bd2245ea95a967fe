import { bigint, index, integer, pgTable, text } from 'drizzle-orm/pg-core';
import type { RunStatus } from './schema.js';

/** PostgreSQL mirror of `runs` (`schema.ts`): one row per dispatch a runner started. Times are Unix ms. */
export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    dispatchKey: text('dispatch_key').notNull().unique(),
    dispatchId: text('dispatch_id').notNull(),
    taskId: text('task_id').notNull(),
    group: text('group').notNull(),
    status: text('status').$type<RunStatus>().notNull(),
    pid: integer('pid'),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    outputTail: text('output_tail'),
    contextFile: text('context_file'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    startedAt: bigint('started_at', { mode: 'number' }),
    finishedAt: bigint('finished_at', { mode: 'number' }),
  },
  (t) => [index('runs_status_idx').on(t.status, t.id), index('runs_task_idx').on(t.taskId, t.id)],
);
