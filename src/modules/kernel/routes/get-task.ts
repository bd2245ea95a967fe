import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { actorOf, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { requireTask } from '../service/read.js';
import { ETagHeader, TaskIdParams, TaskSchema } from './schemas.js';

/** `GET /v1/tasks/{id}`: the task with its `ETag`. Any group may read. 404 `not_found`. */
export function getTaskOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/tasks/{id}',
      operationId: 'getTask',
      tags: ['kernel'],
      summary: 'One task',
      security: [SIGNED],
      request: { params: TaskIdParams },
      responses: { 200: json('The task.', TaskSchema, ETagHeader), ...problems('not_found') },
    }),
    handler: async (c) => {
      actorOf(c);
      return sendTask(c, await requireTask(deps, taskIdParam(c)));
    },
  };
}
