import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requirePrincipal } from '../../../platform/http/guard.js';
import { pageOf, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { REQUEST_READERS } from '../access.js';
import { listGrantRequests, type GrantRequestDeps } from '../service.js';
import { GRANT_REQUEST_STATUSES, GrantRequestId, GrantRequestSchema } from './schemas.js';

/** The query of `GET /v1/grant-requests`; the cursor is the last request's id. */
const ListQuery = z.strictObject({
  group: GroupName.optional().describe('Only the requests of this group.'),
  status: z.enum(GRANT_REQUEST_STATUSES).optional().describe('The status effective now.'),
  ...pageQuery(500, 100, GrantRequestId),
});

/**
 * `GET /v1/grant-requests?group=&status=&limit=&cursor=` (operators, auditors): requests oldest
 * first; `status` is effective now (a pending request past its deadline is `expired`).
 * 200 `{data, has_more, next_cursor}`. Errors: 422 `validation_failed`.
 */
export function listGrantRequestsOp(deps: GrantRequestDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/grant-requests',
      operationId: 'listGrantRequests',
      tags: ['grants'],
      summary: 'List access requests',
      security: [BEARER],
      request: { query: ListQuery },
      responses: { 200: json('A page of requests, oldest first.', pageOf(GrantRequestSchema)), ...problems('validation_failed') },
    }),
    guard: requirePrincipal(REQUEST_READERS),
    handler: async (c) => {
      const q = queryParams(c, ListQuery);
      const { items, nextCursor } = await listGrantRequests(deps, { group: q.group, status: q.status, limit: q.limit, after: q.cursor });
      return c.json({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
    },
  };
}
