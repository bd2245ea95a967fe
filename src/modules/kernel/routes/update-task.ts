import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, sendTask, taskIdParam } from '../http.js';
import { PRIORITIES } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { updateTask } from '../service/edit.js';
import { CreateTaskBody } from './create-task.js';
import { ETagHeader, TaskIdParams, TaskMutationHeaders, TaskSchema } from './schemas.js';

/**
 * A member the body may not carry because the field is fixed at creation: present with any value,
 * it fails validation (422 `validation_failed`) with a message saying so and what to do instead.
 * In the OpenAPI document it is a member no value satisfies (`not: {}`).
 */
function fixedAtCreation(field: 'type' | 'gate') {
  const why = field === 'type' ? 'it decides the default gate and the separation of powers' : 'it decides who approves the task';
  return z
    .never({ error: `a task's ${field} is fixed at creation (${why}); create a new task instead` })
    .meta({ type: 'null', not: {}, description: `Refused: a task's ${field} is fixed at creation.` })
    .optional();
}

/**
 * The body of `PATCH /v1/tasks/{id}`: at least one of `title` (1–200 characters after trimming),
 * `description` (at most 10 000 characters) and `priority` (P0–P3), with the rules of
 * `POST /v1/tasks`. `type` and `gate` are refused with a message naming them as fixed at creation;
 * any other member is refused as unknown.
 */
export const UpdateTaskBody = z
  .strictObject({
    title: CreateTaskBody.shape.title.optional(),
    description: CreateTaskBody.shape.description,
    priority: z.enum(PRIORITIES).optional(),
    type: fixedAtCreation('type'),
    gate: fixedAtCreation('gate'),
  })
  .refine((b) => b.title !== undefined || b.description !== undefined || b.priority !== undefined, 'send at least one of title, description, priority');

/**
 * `PATCH /v1/tasks/{id}` with `If-Match`: edits a task's title, description and/or priority (main;
 * the assigned group may edit the description only). 200 task + new `ETag` (the same task and
 * `ETag` when nothing changed). Errors: 404, 428, 412, 403 `forbidden`, 409 `conflict` (DONE), 422.
 */
export function updateTaskOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'patch',
      path: '/v1/tasks/{id}',
      operationId: 'updateTask',
      tags: ['kernel'],
      summary: "Edit a task's title, description or priority",
      security: [SIGNED],
      request: { params: TaskIdParams, headers: TaskMutationHeaders, body: jsonRequest(UpdateTaskBody) },
      responses: {
        200: json('The task (unchanged, with the same ETag, when nothing changed).', TaskSchema, ETagHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'precondition_required', 'precondition_failed', 'conflict'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const id = taskIdParam(c);
      const body = await jsonBody(c, UpdateTaskBody);
      const row = await updateTask(deps, id, actor, c.req.header('if-match'), {
        ...(body.title !== undefined ? { title: body.title } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.priority !== undefined ? { priority: body.priority } : {}),
      });
      return sendTask(c, row);
    },
  };
}
