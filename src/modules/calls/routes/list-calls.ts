import type { Context } from 'hono';
import { z } from 'zod';
import { BEARER, createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { requireRole } from '../../../platform/http/guard.js';
import { Cursor, decodeCursor, deprecatedAlias, encodeCursor, invalidCursor, pageOf, pagePosition, pageQuery, toPage } from '../../../platform/http/pagination.js';
import { ApiError } from '../../../platform/http/problem.js';
import { queryParams } from '../../../platform/http/validate.js';
import { CALL_STATUSES, type CallFilter, type CallRow, type CallStore } from '../store.js';
import { callView } from '../views.js';
import { CallSummarySchema } from './schemas.js';

/**
 * The query of both list routes (strings coerced): `group` (token routes only), `status`,
 * `task_id`, `limit` (1–1000, default 100), `cursor`, and the deprecated `before` (RFC 3339,
 * exclusive). The MCP server's `list_calls` takes the same filters.
 */
export const ListCallsQuery = z.object({
  /** Token routes only: one group's calls. */
  group: z.string().min(1).max(63).optional().describe("`GET /v1/calls` only: one group's calls."),
  status: z.enum(CALL_STATUSES).optional(),
  task_id: z.string().min(1).max(128).optional(),
  ...pageQuery(1000, 100, Cursor),
  /** RFC 3339: only calls created before this instant. Deprecated: use `cursor`. */
  before: deprecatedAlias(z.iso.datetime({ offset: true }).optional(), 'only calls created before this instant (RFC 3339, exclusive); use `cursor`.'),
});

/** The position of a call in the lists' order: `created_at DESC, request_id, "group"`. */
type CallPosition = NonNullable<CallFilter['after']>;

/** The cursor of a call: `encodeCursor("<created_at ms>:<group>:<request_id>")` (group names hold no `:`). */
function cursorOf(row: CallRow): string {
  return encodeCursor(`${row.createdAt}:${row.group}:${row.requestId}`);
}

/** The position a cursor made by {@link cursorOf} holds. @throws ApiError 422 `validation_failed` for any other cursor. */
function positionOf(cursor: string): CallPosition {
  const m = /^(\d{1,15}):([a-z][a-z0-9_-]{0,62}):(.+)$/s.exec(String(decodeCursor(cursor)));
  if (!m) throw invalidCursor();
  return { createdAt: Number(m[1]), group: m[2]!, requestId: m[3]! };
}

/** The answer of both list routes. */
const CallPage = pageOf(CallSummarySchema);

/**
 * Answers one page of calls for the request's query: the calling group's own calls (`own`:
 * a `group` filter is ignored), or any group's (`all`, tokens).
 */
async function listCalls(store: CallStore, c: Context<AppEnv>, scope: 'own' | 'all'): Promise<Response> {
  const q = queryParams(c, ListCallsQuery);
  const p = c.get('principal');
  const group = scope === 'own' && p.type === 'group' ? p.group : q.group;
  const after = q.cursor === undefined ? undefined : positionOf(q.cursor);
  pagePosition(after, 'before', q.before);
  const rows = await store.list({
    group,
    status: q.status,
    taskId: q.task_id,
    ...(after ? { after } : {}),
    ...(q.before !== undefined ? { before: Date.parse(q.before) } : {}),
    limit: q.limit + 1,
  });
  return c.json(toPage(rows, q.limit, cursorOf, (r) => callView(r, false)));
}

/**
 * `GET /v1/ext/calls?status=&task_id=&limit=&cursor=` (agent groups): the group's own calls,
 * newest first, without receipts and answers: `{data: CallSummary[], has_more, next_cursor}`;
 * a `group` filter is ignored. The deprecated `before` pages by time as it did.
 * @throws ApiError 422 `validation_failed` for a bad query or cursor.
 */
export function listOwnCallsOp(store: CallStore): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/ext/calls',
      operationId: 'listOwnCalls',
      tags: ['calls'],
      summary: "The calling group's calls",
      security: [SIGNED],
      request: { query: ListCallsQuery.omit({ group: true }) },
      responses: { 200: json('A page of calls, newest first.', CallPage), ...problems('validation_failed') },
    }),
    handler: (c) => {
      const p = c.get('principal');
      if (p.type !== 'group') throw new ApiError('forbidden', 'Agent groups list their own calls here; tokens use GET /v1/calls.');
      return listCalls(store, c, 'own');
    },
  };
}

/**
 * `GET /v1/calls?group=&status=&task_id=&limit=&cursor=` (operator and auditor tokens): every
 * group's calls, newest first, as {@link listOwnCallsOp} answers them.
 * @throws ApiError 422 `validation_failed` for a bad query or cursor.
 */
export function listAllCallsOp(store: CallStore): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/calls',
      operationId: 'listCalls',
      tags: ['calls'],
      summary: "Every group's calls",
      security: [BEARER],
      request: { query: ListCallsQuery },
      responses: { 200: json('A page of calls, newest first.', CallPage), ...problems('validation_failed') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: (c) => listCalls(store, c, 'all'),
  };
}
