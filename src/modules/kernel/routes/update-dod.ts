import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, DodItemUpdates, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { updateDod } from '../service/edit.js';
import { ETagHeader, TaskIdParams, TaskMutationHeaders, TaskSchema } from './schemas.js';

/** The body of `PATCH /v1/tasks/{id}/dod`: at least one of `items`, `docs_updated`. */
export const UpdateDodBody = z
  .strictObject({
    items: DodItemUpdates.optional(),
    docs_updated: z.boolean().optional(),
  })
  .refine((b) => b.items !== undefined || b.docs_updated !== undefined, 'send items, docs_updated, or both');

/**
 * `PATCH /v1/tasks/{id}/dod` with `If-Match`: ticks definition-of-done items and/or sets
 * `docs_updated` (main, the assigned group or the executor). 200 task + new `ETag`.
 * Errors: 404, 428, 412, 403 `forbidden`, 409 `conflict` (DONE), 422.
 */
export function updateDodOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'patch',
      path: '/v1/tasks/{id}/dod',
      operationId: 'updateDefinitionOfDone',
      tags: ['kernel'],
      summary: 'Tick definition-of-done items, set docs_updated',
      security: [SIGNED],
      request: { params: TaskIdParams, headers: TaskMutationHeaders, body: jsonRequest(UpdateDodBody) },
      responses: {
        200: json('The task.', TaskSchema, ETagHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'precondition_required', 'precondition_failed', 'conflict'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const id = taskIdParam(c);
      const body = await jsonBody(c, UpdateDodBody);
      const row = await updateDod(deps, id, actor, c.req.header('if-match'), {
        ...(body.items !== undefined ? { items: body.items } : {}),
        ...(body.docs_updated !== undefined ? { docsUpdated: body.docs_updated } : {}),
      });
      return sendTask(c, row);
    },
  };
}
