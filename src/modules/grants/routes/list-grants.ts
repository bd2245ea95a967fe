import type { Context } from 'hono';
import { z } from 'zod';
import type { GrantDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { listGrants } from '../service.js';

const ListQuery = z.strictObject({
  group: GroupName.optional(),
  provider: z.string().min(1).max(63).optional(),
  status: z.enum(['pending_approval', 'active', 'rejected', 'expired', 'revoked']).optional(),
  /** RFC 3339 instant: only grants that were active then. */
  at: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The previous page's `next_cursor`. */
  starting_after: z.string().min(1).max(64).optional(),
});

/**
 * `GET /v1/grants?group=&provider=&status=&at=&limit=&starting_after=` (operators, auditors, `main`):
 * grants oldest first; `status` is effective now; `at` keeps the grants active at that instant
 * (history: activated by then, not yet expired or revoked). 200 `{data, has_more, next_cursor}`
 * (pass `next_cursor` as `starting_after` for the next page).
 * Errors: 422 `validation_failed`.
 */
export function listGrantsRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const q = queryParams(c, ListQuery);
    const { items, nextCursor } = await listGrants(deps, {
      group: q.group,
      provider: q.provider,
      status: q.status,
      at: q.at === undefined ? undefined : Date.parse(q.at),
      limit: q.limit,
      after: q.starting_after,
    });
    return c.json({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
  };
}
