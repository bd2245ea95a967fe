import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { pageOf, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import type { RunStore } from '../store.js';
import { runJson } from '../views.js';
import { RUN_STATUSES, RunId, RunSchema } from './schemas.js';

const ListRunsQuery = z.strictObject({
  status: z.enum(RUN_STATUSES).optional(),
  group: z.string().min(1).max(63).optional(),
  task_id: z.string().min(1).max(64).optional(),
  ...pageQuery(200, 50, RunId),
});

/**
 * `GET /v1/runs?status=&group=&task_id=&limit=&cursor=` (operators, auditors): runs in id
 * (creation) order, `{data: Run[], has_more, next_cursor}`. 422 `validation_failed`.
 */
export function listRunsOp(deps: { runs: RunStore }): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/runs',
      operationId: 'listRuns',
      tags: ['runner'],
      summary: 'List runner processes started for dispatches',
      security: [BEARER],
      request: { query: ListRunsQuery },
      responses: { 200: json('A page of runs, oldest first.', pageOf(RunSchema)), ...problems('validation_failed') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => {
      const q = queryParams(c, ListRunsQuery);
      const { rows, hasMore } = await deps.runs.list({
        limit: q.limit,
        ...(q.status ? { status: q.status } : {}),
        ...(q.group ? { group: q.group } : {}),
        ...(q.task_id ? { taskId: q.task_id } : {}),
        ...(q.cursor ? { startingAfter: q.cursor } : {}),
      });
      return c.json({ data: rows.map(runJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null });
    },
  };
}
