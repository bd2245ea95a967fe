import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../http/env.js';
import { queryParams } from '../../../http/validate.js';
import { CALL_STATUSES, type CallStore } from '../store.js';
import { callView } from '../views.js';

const Query = z.object({
  group: z.string().min(1).max(63).optional(),
  status: z.enum(CALL_STATUSES).optional(),
  task_id: z.string().min(1).max(128).optional(),
  /** RFC 3339: only calls created before this instant (paging). */
  before: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `GET /v1/ext/calls?status=&task_id=&before=&limit=`: calls newest first, without receipts and
 * answers, as `{data: CallView[]}`. A group sees only its own (a `group` filter is ignored);
 * operator and auditor tokens see every group's and may filter with `group`.
 */
export function listCallsRoute(store: CallStore) {
  return (c: Context<AppEnv>): Response => {
    const p = c.get('principal');
    const q = queryParams(c, Query);
    const rows = store.list({
      group: p.type === 'group' ? p.group : q.group,
      status: q.status,
      taskId: q.task_id,
      before: q.before === undefined ? undefined : Date.parse(q.before),
      limit: q.limit,
    });
    return c.json({ data: rows.map((r) => callView(r, false)) });
  };
}
