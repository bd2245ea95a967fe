/**
 * The webhook deliveries behind the store seam (see `platform/db/seam.ts`): `webhook_deliveries`,
 * the outbox fan-out's writes (deliveries and the cursor in one transaction), the due deliveries
 * a worker claims, each attempt's result, and the `grant.expiring` audit rows. This file is the
 * interface and the SQLite implementation; `store.pg.ts` is the PostgreSQL one.
 */
import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { ActivityInput } from '../../platform/audit/trail.js';
import { appendActivities } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { advanceCursorSqlite, type OutboxBatch } from '../../platform/outbox/store.js';
import { GRANT_EXPIRING_KIND, REFUSAL_KINDS } from './events.js';
import { webhookDeliveries } from './schema.js';

/** A `webhook_deliveries` row. Times are Unix ms. */
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
/** A delivery's state: waiting for (another) attempt, received (2xx), or given up after the last attempt. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
/** What an attempt changes on its delivery row. */
export type AttemptPatch = Pick<DeliveryRow, 'status' | 'attempts' | 'nextAttemptAt' | 'lastAttemptAt' | 'lastStatus' | 'lastError' | 'deliveredAt'>;

/** Filters and page of {@link WebhookStore.list}; `after` is the last id of the previous page. */
export interface DeliveryQuery {
  status?: DeliveryStatus;
  endpoint?: string;
  limit: number;
  after?: string;
}

/** Where webhook deliveries are kept. Every method rejects with the engine's error (503 on PostgreSQL) when the database fails. */
export interface WebhookStore {
  /**
   * The fan-out of one outbox batch: inserts `rows` (a row whose (endpoint, event) exists is
   * skipped: a replayed batch adds nothing) and moves `consumer`'s cursor to `upTo`, in one
   * transaction (the batch's on PostgreSQL).
   * @returns how many rows were new.
   */
  enqueue(batch: OutboxBatch, consumer: string, rows: readonly DeliveryRow[], upTo: number): Promise<number>;
  /** Refused calls (`call.denied`, `call.rejected`) of `group` with `ts` ≥ `fromTs` (RFC 3339) and `seq` < `beforeSeq`. */
  countRefusals(group: string, fromTs: string, beforeSeq: number): Promise<number>;
  /**
   * Claims up to `limit` pending deliveries due at `nowMs` (oldest due first) by moving their
   * `next_attempt_at` to `nowMs + leaseMs`: another worker (another replica) skips them, and a
   * worker that dies mid-send leaves them due again after the lease.
   * @returns the claimed rows as they were before the claim.
   */
  claimDue(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRow[]>;
  /** Writes an attempt's result, only if the row still has `attemptsBefore` attempts and is pending (a late worker changes nothing). @returns whether it was written. */
  recordAttempt(id: string, attemptsBefore: number, patch: AttemptPatch): Promise<boolean>;
  get(id: string): Promise<DeliveryRow | null>;
  /** Deliveries by id (creation order), filtered, at most `limit`; `more` when others follow. */
  list(q: DeliveryQuery): Promise<{ rows: DeliveryRow[]; more: boolean }>;
  /** Deliveries per status (every status present, 0 when none). */
  counts(): Promise<Record<DeliveryStatus, number>>;
  /** An operator's retry, in one transaction: reads the row (null: none), lets `plan` decide, applies its patch with its audit rows. */
  retry<T>(id: string, plan: Plan<DeliveryRow | null, Partial<AttemptPatch>, T>): Promise<T>;
  /**
   * Appends the `grant.expiring` rows of `rows` whose subject (a grant id) has none yet, in one
   * transaction (appends of this kind are serialised, so each grant gets one).
   * @returns the subjects appended.
   */
  recordExpiring(rows: readonly ActivityInput[]): Promise<string[]>;
}

const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

/** Every status with its count (0 for the absent ones). */
export function countsOf(rows: readonly { status: string; n: number | string }[]): Record<DeliveryStatus, number> {
  const out = { pending: 0, delivered: 0, failed: 0 };
  for (const r of rows) if ((STATUSES as readonly string[]).includes(r.status)) out[r.status as DeliveryStatus] = Number(r.n);
  return out;
}

/** {@link WebhookStore} over SQLite. */
export function sqliteWebhookStore(db: Db, clock: Clock): WebhookStore {
  const d = webhookDeliveries;
  const one = (id: string) => db.orm.select().from(d).where(eq(d.id, id)).get() ?? null;
  return {
    enqueue: (_batch, consumer, rows, upTo) =>
      settled(() =>
        immediate(db, () => {
          let added = 0;
          for (const row of rows) added += db.orm.insert(d).values(row).onConflictDoNothing({ target: [d.endpointId, d.eventId] }).run().changes;
          advanceCursorSqlite(db, consumer, upTo, clock.now());
          return added;
        }),
      ),
    countRefusals: (group, fromTs, beforeSeq) =>
      settled(() => {
        const kinds = REFUSAL_KINDS.map(() => '?').join(', ');
        const r = db.sqlite
          .prepare(`SELECT count(*) AS n FROM gov_activities WHERE kind IN (${kinds}) AND actor = ? AND ts >= ? AND seq < ?`)
          .get(...REFUSAL_KINDS, group, fromTs, beforeSeq) as { n: number };
        return r.n;
      }),
    claimDue: (now, limit, leaseMs) =>
      settled(() =>
        immediate(db, () => {
          const due = db.orm
            .select()
            .from(d)
            .where(and(eq(d.status, 'pending'), sql`${d.nextAttemptAt} <= ${now}`))
            .orderBy(asc(d.nextAttemptAt), asc(d.id))
            .limit(limit)
            .all();
          if (due.length > 0) db.orm.update(d).set({ nextAttemptAt: now + leaseMs }).where(inArray(d.id, due.map((r) => r.id))).run();
          return due;
        }),
      ),
    recordAttempt: (id, attemptsBefore, patch) =>
      settled(() => db.orm.update(d).set(patch).where(and(eq(d.id, id), eq(d.attempts, attemptsBefore), eq(d.status, 'pending'))).run().changes === 1),
    get: (id) => settled(() => one(id)),
    list: (q) =>
      settled(() => {
        const rows = db.orm
          .select()
          .from(d)
          .where(and(q.status ? eq(d.status, q.status) : undefined, q.endpoint ? eq(d.endpointId, q.endpoint) : undefined, q.after ? gt(d.id, q.after) : undefined))
          .orderBy(asc(d.id))
          .limit(q.limit + 1)
          .all();
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    counts: () => settled(() => countsOf(db.sqlite.prepare('SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status').all() as { status: string; n: number }[])),
    retry: (id, plan) => runPlan(db, clock, () => one(id), plan, (patch) => db.orm.update(d).set(patch).where(eq(d.id, id)).run()),
    recordExpiring: (rows) =>
      settled(() =>
        immediate(db, () => {
          const seen = db.sqlite.prepare('SELECT 1 FROM gov_activities WHERE kind = ? AND subject = ? LIMIT 1');
          const fresh = rows.filter((r) => r.kind === GRANT_EXPIRING_KIND && seen.get(GRANT_EXPIRING_KIND, r.subject) === undefined);
          if (fresh.length > 0) appendActivities(db, [...fresh], clock.now());
          return fresh.map((r) => r.subject);
        }),
      ),
  };
}
