/**
 * {@link AuditStore} on PostgreSQL: reads `gov_activities` for `GET /v1/audit` as the SQLite store
 * does (`store.ts`), with the same filters, order and pages. The trail is written by
 * `appendActivitiesPg` (`platform/audit/trail.pg.ts`) inside each change's transaction.
 */
import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { Activity } from '../../platform/audit/chain.js';
import { govActivities } from '../../platform/audit/schema.pg.js';
import { failClosedPg, type PgDb } from '../../platform/db/pg.js';
import type { AuditStore } from './store.js';

/** {@link AuditStore} over PostgreSQL. */
export function pgAuditStore(pg: PgDb): AuditStore {
  const t = govActivities;
  return {
    list: (f) =>
      failClosedPg(async () => {
        const where: (SQL | undefined)[] = [gt(t.seq, f.since)];
        if (f.subject !== undefined) where.push(eq(t.subject, f.subject));
        if (f.actor !== undefined) where.push(eq(t.actor, f.actor));
        // A prefix (`grant.*`) as a prefix of the bytes, as SQLite's BINARY range does: a range
        // under the database's collation (en_US…) would order punctuation differently.
        if (f.kind?.endsWith('.*')) where.push(sql`starts_with(${t.kind}, ${f.kind.slice(0, -1)})`);
        else if (f.kind !== undefined) where.push(eq(t.kind, f.kind));
        const rows = await pg.orm.select().from(t).where(and(...where)).orderBy(asc(t.seq)).limit(f.limit + 1);
        const items = rows.slice(0, f.limit).map((r): Activity => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
        return { items, nextSince: rows.length > f.limit ? items[items.length - 1]!.seq : null };
      }, pg.label),
  };
}
