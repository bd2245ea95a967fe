import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';
import { queryParams } from '../../../platform/http/validate.js';
import { CALL_STATUSES, type CallStore } from '../store.js';
import { callView } from '../views.js';

/**
 * The query of both list routes (strings coerced): `group` (token routes only), `status`,
 * `task_id`, `before` (RFC 3339, exclusive: page with the last `created_at` seen), `limit`
 * (1–1000, default 100). The MCP server's `list_calls` takes the same filters.
 */
export const ListCallsQuery = z.object({
  /** Token routes only: one group's calls. */
  group: z.string().min(1).max(63).optional(),
  status: z.enum(CALL_STATUSES).optional(),
  task_id: z.string().min(1).max(128).optional(),
  /** RFC 3339: only calls created before this instant (paging: the last `created_at` seen). */
  before: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Lists calls newest first, without receipts and answers: `{data: CallView[]}`.
 * - `GET /v1/ext/calls?status=&task_id=&before=&limit=` (`scope: 'own'`): an agent group's own
 *   calls; a `group` filter is ignored.
 * - `GET /v1/calls?group=&status=&task_id=&before=&limit=` (`scope: 'all'`, operator and auditor
 *   tokens): every group's calls.
 * @throws ApiError 422 `validation_failed` for a bad query.
 */
export function listCallsRoute(store: CallStore, scope: 'own' | 'all') {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const p = c.get('principal');
    if (scope === 'own' && p.type !== 'group') throw new ApiError('forbidden', 'Agent groups list their own calls here; tokens use GET /v1/calls.');
    const q = queryParams(c, ListCallsQuery);
    const rows = await store.list({
      group: p.type === 'group' ? p.group : q.group,
      status: q.status,
      taskId: q.task_id,
      before: q.before === undefined ? undefined : Date.parse(q.before),
      limit: q.limit,
    });
    return c.json({ data: rows.map((r) => callView(r, false)) });
  };
}
