/**
 * Reading the audit trail for `GET /v1/audit` (the store seam, see `platform/db/seam.ts`). The
 * trail is written by the platform's append (`platform/audit/trail.ts`), inside the transaction of
 * each change it records; this store only reads it.
 */
import { and, asc, eq, gt, gte, lt, type SQL } from 'drizzle-orm';
import type { Activity } from '../../platform/audit/chain.js';
import { govActivities } from '../../platform/audit/schema.js';
import type { Db } from '../../platform/db/open.js';
import { settled } from '../../platform/db/seam.js';

/**
 * Which rows to read: after `since` (a seq, exclusive), of a `subject`, an `actor`, a `kind`
 * (exact, or a prefix ending in `.*`: `grant.*`), at most `limit`.
 */
export interface AuditFilter {
  subject?: string;
  kind?: string;
  actor?: string;
  since: number;
  limit: number;
}

/** The audit trail as the audit routes read it. */
export interface AuditStore {
  /**
   * Rows in `seq` order after `filter.since`, filtered, at most `filter.limit`. Rows carry
   * `prevHash` and `hash` so a reader can check the chain.
   * @returns the page and `nextSince` (its last seq when more rows follow, else null).
   */
  list(filter: AuditFilter): Promise<{ items: Activity[]; nextSince: number | null }>;
}

/** What the audit routes run on. */
export interface AuditDeps {
  stores: { audit: AuditStore };
}

/** {@link AuditStore} over SQLite (`gov_activities`, read with its subject and kind indexes). */
export function sqliteAuditStore(db: Db): AuditStore {
  const t = govActivities;
  return {
    list: (f) =>
      settled(() => {
        const where: (SQL | undefined)[] = [gt(t.seq, f.since)];
        if (f.subject !== undefined) where.push(eq(t.subject, f.subject));
        if (f.actor !== undefined) where.push(eq(t.actor, f.actor));
        if (f.kind?.endsWith('.*')) {
          const prefix = f.kind.slice(0, -1);
          where.push(gte(t.kind, prefix), lt(t.kind, `${prefix}\uffff`));
        } else if (f.kind !== undefined) where.push(eq(t.kind, f.kind));
        const rows = db.orm.select().from(t).where(and(...where)).orderBy(asc(t.seq)).limit(f.limit + 1).all();
        const items = rows.slice(0, f.limit).map((r): Activity => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
        return { items, nextSince: rows.length > f.limit ? items[items.length - 1]!.seq : null };
      }),
  };
}
