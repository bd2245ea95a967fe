import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, DodItemUpdates, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { updateDod } from '../service/edit.js';

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
export function updateDodRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    const actor = actorOf(c);
    const id = taskIdParam(c);
    const body = await jsonBody(c, UpdateDodBody);
    const row = await updateDod(deps, id, actor, c.req.header('if-match'), {
      ...(body.items !== undefined ? { items: body.items } : {}),
      ...(body.docs_updated !== undefined ? { docsUpdated: body.docs_updated } : {}),
    });
    return sendTask(c, row);
  };
}
