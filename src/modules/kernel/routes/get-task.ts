import type { Context } from 'hono';
import type { AppEnv } from '../../../platform/http/env.js';
import { actorOf, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { requireTask } from '../service/read.js';

/** `GET /v1/tasks/{id}`: the task with its `ETag`. Any group may read. 404 `not_found`. */
export function getTaskRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    actorOf(c);
    return sendTask(c, await requireTask(deps, taskIdParam(c)));
  };
}
