import type { Context } from 'hono';
import { z } from 'zod';
import type { Db } from '../../../platform/db/open.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import type { Activity } from '../../../platform/audit/trail.js';

const AuditQuery = z.strictObject({
  subject: z.string().min(1).max(256).optional(),
  /** Exact kind (`grant.revoked`) or a prefix ending in `.*` (`grant.*`). */
  kind: z.string().regex(/^[a-z0-9_.]+(\.\*)?$/, 'kind is a dotted name, optionally ending in ".*"').optional(),
  actor: z.string().min(1).max(256).optional(),
  /** Rows after this seq (exclusive): pass the previous page's `next_since`. */
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Filters of {@link listActivities}. */
export type AuditFilter = z.infer<typeof AuditQuery>;

/**
 * Reads audit rows in `seq` order after `since`, filtered by subject, kind (exact or `prefix.*`)
 * and actor, at most `limit`. Rows carry `prev_hash` and `hash` so a reader can check the chain.
 * @returns the page and `nextSince` (its last seq when more rows follow, else null).
 */
export function listActivities(deps: { db: Db }, f: AuditFilter): { items: Activity[]; nextSince: number | null } {
  const where = ['seq > ?'];
  const args: (string | number)[] = [f.since];
  if (f.subject !== undefined) (where.push('subject = ?'), args.push(f.subject));
  if (f.actor !== undefined) (where.push('actor = ?'), args.push(f.actor));
  if (f.kind?.endsWith('.*')) (where.push('kind >= ? AND kind < ?'), args.push(f.kind.slice(0, -1), `${f.kind.slice(0, -1)}\uffff`));
  else if (f.kind !== undefined) (where.push('kind = ?'), args.push(f.kind));
  const rows = deps.db.sqlite
    .prepare(`SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`)
    .all(...args, f.limit + 1) as (Omit<Activity, 'detail'> & { detail: string })[];
  const items = rows.slice(0, f.limit).map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  return { items, nextSince: rows.length > f.limit ? items[items.length - 1]!.seq : null };
}

/**
 * `GET /v1/audit?subject=&kind=&actor=&since=&limit=` (operators and auditors): the audit trail
 * in seq order. 200 `{data: [{seq, ts, actor, kind, subject, detail, prev_hash, hash}], has_more, next_since}`
 * (pass `next_since` as `since` for the next page).
 * Errors: 422 `validation_failed`, 403 `forbidden`.
 */
export function listAuditRoute(deps: { db: Db }) {
  return (c: Context<AppEnv>): Response => {
    const { items, nextSince } = listActivities(deps, queryParams(c, AuditQuery));
    return c.json({
      data: items.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, subject: a.subject, detail: a.detail, prev_hash: a.prevHash, hash: a.hash })),
      has_more: nextSince !== null,
      next_since: nextSince,
    });
  };
}
