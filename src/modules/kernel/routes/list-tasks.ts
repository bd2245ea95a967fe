import { z } from 'zod';
import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { deprecatedAlias, pageOf, pagePosition, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { actorOf, TaskId } from '../http.js';
import { TASK_STATES, TASK_TYPES, taskJson } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { listTasks } from '../service/read.js';
import { TaskSchema } from './schemas.js';

/** The query of `GET /v1/tasks`. `group` matches `assigned_group`; the cursor is the last task's id. */
export const ListTasksQuery = z.strictObject({
  state: z.enum(TASK_STATES).optional(),
  group: GroupName.optional().describe('The assigned group.'),
  type: z.enum(TASK_TYPES).optional(),
  ...pageQuery(200, 50, TaskId),
  starting_after: deprecatedAlias(TaskId.optional(), 'the same as `cursor`.'),
});

/**
 * `GET /v1/tasks?state=&group=&type=&limit=&cursor=`: tasks oldest first,
 * `{data: Task[], has_more, next_cursor}` (pass `next_cursor` as `cursor`, or as the deprecated
 * `starting_after`, for the next page). Any group may list.
 * Errors: 422 `validation_failed`.
 */
export function listTasksOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/tasks',
      operationId: 'listTasks',
      tags: ['kernel'],
      summary: 'List tasks',
      security: [SIGNED],
      request: { query: ListTasksQuery },
      responses: { 200: json('A page of tasks, oldest first.', pageOf(TaskSchema)), ...problems('validation_failed') },
    }),
    handler: async (c) => {
      actorOf(c);
      return c.json(await tasksPage(deps, queryParams(c, ListTasksQuery)));
    },
  };
}

/**
 * One page of tasks for a validated {@link ListTasksQuery}, as both the route and
 * `broker tasks list` render it: `{data: Task[], has_more, next_cursor}`.
 * @throws ApiError 422 `validation_failed` when both `cursor` and `starting_after` are given.
 */
export async function tasksPage(deps: Pick<KernelDeps, 'tasks'>, q: z.infer<typeof ListTasksQuery>) {
  const after = pagePosition(q.cursor, 'starting_after', q.starting_after);
  const { rows, hasMore } = await listTasks(deps, {
    limit: q.limit,
    ...(q.state ? { state: q.state } : {}),
    ...(q.group ? { group: q.group } : {}),
    ...(q.type ? { type: q.type } : {}),
    ...(after ? { startingAfter: after } : {}),
  });
  return { data: rows.map(taskJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null };
}
