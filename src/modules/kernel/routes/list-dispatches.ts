import { z } from 'zod';
import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { deprecatedAlias, pageOf, pagePosition, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { dispatchJson, listDispatches } from '../service/dispatch.js';
import { actorOf, TaskId } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { DispatchSchema } from './schemas.js';

/** The query of `GET /v1/dispatches`; the cursor is the last dispatch's id (a ULID). */
export const ListDispatchesQuery = z.strictObject({
  status: z.enum(['pending', 'acked']).optional(),
  ...pageQuery(200, 50, TaskId),
  starting_after: deprecatedAlias(z.string().min(1).max(64).optional(), 'the same as `cursor`.'),
});

/**
 * `GET /v1/dispatches?status=pending&limit=&cursor=`: the signing group's dispatches, oldest first,
 * `{data: Dispatch[], has_more, next_cursor}`. A group sees only its own. 422 `validation_failed`.
 */
export function listDispatchesOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/dispatches',
      operationId: 'listDispatches',
      tags: ['kernel'],
      summary: "List the signing group's dispatches",
      security: [SIGNED],
      request: { query: ListDispatchesQuery },
      responses: { 200: json('A page of dispatches, oldest first.', pageOf(DispatchSchema)), ...problems('validation_failed') },
    }),
    handler: async (c) => {
      const group = actorOf(c);
      const q = queryParams(c, ListDispatchesQuery);
      const after = pagePosition(q.cursor, 'starting_after', q.starting_after);
      const { rows, hasMore } = await listDispatches(deps, {
        group,
        limit: q.limit,
        ...(q.status ? { status: q.status } : {}),
        ...(after ? { startingAfter: after } : {}),
      });
      return c.json({ data: rows.map(dispatchJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null });
    },
  };
}
