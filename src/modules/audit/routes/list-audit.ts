import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import type { AuditDeps } from '../store.js';

const AuditQuery = z.strictObject({
  subject: z.string().min(1).max(256).optional(),
  /** Exact kind (`grant.revoked`) or a prefix ending in `.*` (`grant.*`). */
  kind: z.string().regex(/^[a-z0-9_.]+(\.\*)?$/, 'kind is a dotted name, optionally ending in ".*"').optional(),
  actor: z.string().min(1).max(256).optional(),
  /** Rows after this seq (exclusive): pass the previous page's `next_since`. */
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `GET /v1/audit?subject=&kind=&actor=&since=&limit=` (operators and auditors): the audit trail
 * in seq order. 200 `{data: [{seq, ts, actor, kind, subject, detail, prev_hash, hash}], has_more, next_since}`
 * (pass `next_since` as `since` for the next page).
 * Errors: 422 `validation_failed`, 403 `forbidden`.
 */
export function listAuditRoute(deps: AuditDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const { items, nextSince } = await deps.stores.audit.list(queryParams(c, AuditQuery));
    return c.json({
      data: items.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, subject: a.subject, detail: a.detail, prev_hash: a.prevHash, hash: a.hash })),
      has_more: nextSince !== null,
      next_since: nextSince,
    });
  };
}
