import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { actorOf, TaskId } from '../http.js';
import { TASK_STATES, TASK_TYPES, taskJson } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { listTasks } from '../service/read.js';

/** The query of `GET /v1/tasks`. `group` matches `assigned_group`. */
export const ListTasksQuery = z.strictObject({
  state: z.enum(TASK_STATES).optional(),
  group: GroupName.optional(),
  type: z.enum(TASK_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  starting_after: TaskId.optional(),
});

/**
 * `GET /v1/tasks?state=&group=&type=&limit=&starting_after=`: tasks oldest first,
 * `{data: Task[], has_more, next_cursor}` (pass `next_cursor` as `starting_after` for the next page).
 * Errors: 422 `validation_failed`.
 */
export function listTasksRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    actorOf(c);
    return c.json(await tasksPage(deps, queryParams(c, ListTasksQuery)));
  };
}

/**
 * One page of tasks for a validated {@link ListTasksQuery}, as both the route and
 * `broker tasks list` render it: `{data: Task[], has_more, next_cursor}`.
 */
export async function tasksPage(deps: Pick<KernelDeps, 'tasks'>, q: z.infer<typeof ListTasksQuery>) {
  const { rows, hasMore } = await listTasks(deps, {
    limit: q.limit,
    ...(q.state ? { state: q.state } : {}),
    ...(q.group ? { group: q.group } : {}),
    ...(q.type ? { type: q.type } : {}),
    ...(q.starting_after ? { startingAfter: q.starting_after } : {}),
  });
  return { data: rows.map(taskJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null };
}
