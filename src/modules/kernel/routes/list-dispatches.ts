import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import { dispatchJson, listDispatches } from '../service/dispatch.js';
import { actorOf } from '../http.js';
import type { KernelDeps } from '../service/common.js';

/** The query of `GET /v1/dispatches`. */
export const ListDispatchesQuery = z.strictObject({
  status: z.enum(['pending', 'acked']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  starting_after: z.string().min(1).max(64).optional(),
});

/**
 * `GET /v1/dispatches?status=pending`: the signing group's dispatches, oldest first,
 * `{data: Dispatch[], has_more, next_cursor}`. A group sees only its own. 422 `validation_failed`.
 */
export function listDispatchesRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    const group = actorOf(c);
    const q = queryParams(c, ListDispatchesQuery);
    const { rows, hasMore } = await listDispatches(deps, {
      group,
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.starting_after ? { startingAfter: q.starting_after } : {}),
    });
    return c.json({ data: rows.map(dispatchJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null });
  };
}
