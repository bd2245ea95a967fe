import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { Cursor, decodeCursor, deprecatedAlias, encodeCursor, invalidCursor, pageOf, pagePosition, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import type { AuditDeps } from '../store.js';

/** The query of `GET /v1/audit`; the cursor encodes the last row's `seq`. */
const AuditQuery = z.strictObject({
  subject: z.string().min(1).max(256).optional(),
  /** Exact kind (`grant.revoked`) or a prefix ending in `.*` (`grant.*`). */
  kind: z
    .string()
    .regex(/^[a-z0-9_.]+(\.\*)?$/, 'kind is a dotted name, optionally ending in ".*"')
    .optional()
    .describe('An exact kind (`grant.revoked`) or a prefix ending in `.*` (`grant.*`).'),
  actor: z.string().min(1).max(256).optional(),
  ...pageQuery(1000, 100, Cursor),
  /** Rows after this seq (exclusive): the previous page's `next_since`. Deprecated: use `cursor`. */
  since: deprecatedAlias(z.coerce.number().int().min(0).optional(), "rows after this seq (exclusive), the previous page's `next_since`; use `cursor`."),
});

/** One audit row as the API answers it: the chain members `prev_hash` and `hash` let a reader check it. */
export const AuditEntry = z
  .strictObject({
    seq: z.number().int().min(1),
    ts: z.iso.datetime(),
    actor: z.string(),
    kind: z.string(),
    subject: z.string(),
    detail: z.record(z.string(), z.unknown()),
    prev_hash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditEntry' });

/** A page of the audit trail, with the deprecated `next_since` beside `next_cursor`. */
const AuditPage = pageOf(AuditEntry).extend({
  next_since: z.number().int().nullable().meta({ deprecated: true, description: 'Deprecated: the last seq when more rows follow (pass as `since`). Use `next_cursor`.' }),
});

/** The seq an audit cursor holds. @throws ApiError 422 `validation_failed` for any other cursor. */
function seqOf(cursor: string): number {
  const position = decodeCursor(cursor);
  if (typeof position !== 'number') throw invalidCursor();
  return position;
}

/**
 * `GET /v1/audit?subject=&kind=&actor=&limit=&cursor=` (operators and auditors): the audit trail
 * in seq order. 200 `{data: [{seq, ts, actor, kind, subject, detail, prev_hash, hash}], has_more,
 * next_cursor, next_since}` (pass `next_cursor` as `cursor` for the next page; the deprecated
 * `since`/`next_since` pair pages the same way).
 * Errors: 422 `validation_failed`, 403 `forbidden`.
 */
export function listAuditOp(deps: AuditDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/audit',
      operationId: 'listAudit',
      tags: ['audit'],
      summary: 'Read the audit trail',
      security: [BEARER],
      request: { query: AuditQuery },
      responses: { 200: json('A page of audit rows in seq order.', AuditPage), ...problems('validation_failed') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => {
      const q = queryParams(c, AuditQuery);
      const since = pagePosition(q.cursor === undefined ? undefined : seqOf(q.cursor), 'since', q.since) ?? 0;
      const { items, nextSince } = await deps.stores.audit.list({ subject: q.subject, kind: q.kind, actor: q.actor, limit: q.limit, since });
      return c.json({
        data: items.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, subject: a.subject, detail: a.detail, prev_hash: a.prevHash, hash: a.hash })),
        has_more: nextSince !== null,
        next_cursor: nextSince === null ? null : encodeCursor(nextSince),
        next_since: nextSince,
      });
    },
  };
}
