import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requirePrincipal } from '../../../platform/http/guard.js';
import { deprecatedAlias, pageOf, pagePosition, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { GRANT_READERS } from '../access.js';
import { listGrants, type GrantDeps } from '../service.js';
import { GRANT_STATUSES, GrantId, GrantSchema } from './schemas.js';

/** The query of `GET /v1/grants`; the cursor is the last grant's id. */
const ListQuery = z.strictObject({
  group: GroupName.optional(),
  provider: z.string().min(1).max(63).optional(),
  status: z.enum(GRANT_STATUSES).optional().describe('The status effective now.'),
  /** RFC 3339 instant: only grants that were active then. */
  at: z.iso.datetime({ offset: true }).optional().describe('Only the grants that were active at this instant.'),
  ...pageQuery(500, 100, GrantId),
  starting_after: deprecatedAlias(z.string().min(1).max(64).optional(), 'the same as `cursor`.'),
});

/**
 * `GET /v1/grants?group=&provider=&status=&at=&limit=&cursor=` (operators, auditors):
 * grants oldest first; `status` is effective now; `at` keeps the grants active at that instant
 * (history: activated by then, not yet expired or revoked). 200 `{data, has_more, next_cursor}`
 * (pass `next_cursor` as `cursor`, or as the deprecated `starting_after`, for the next page).
 * Errors: 422 `validation_failed`.
 */
export function listGrantsOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/grants',
      operationId: 'listGrants',
      tags: ['grants'],
      summary: 'List grants',
      security: [BEARER],
      request: { query: ListQuery },
      responses: { 200: json('A page of grants, oldest first.', pageOf(GrantSchema)), ...problems('validation_failed') },
    }),
    guard: requirePrincipal(GRANT_READERS),
    handler: async (c) => {
      const q = queryParams(c, ListQuery);
      const { items, nextCursor } = await listGrants(deps, {
        group: q.group,
        provider: q.provider,
        status: q.status,
        at: q.at === undefined ? undefined : Date.parse(q.at),
        limit: q.limit,
        after: pagePosition(q.cursor, 'starting_after', q.starting_after),
      });
      return c.json({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
    },
  };
}
