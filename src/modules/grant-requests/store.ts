/**
 * The access requests' table behind the store seam (see `platform/db/seam.ts`): `grant_requests`.
 * The grant an approval creates is written by the grants module's own store, never here.
 */
import { and, asc, count, eq, gt, lte, or, type SQL } from 'drizzle-orm';
import { activitiesFor, type Activity, type ActivityInput } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { grantRequests } from './schema.js';

/** A `grant_requests` row. Times are Unix ms. */
export type GrantRequestRow = typeof grantRequests.$inferSelect;
/** Changed columns of a request. */
export type GrantRequestPatch = Partial<Omit<GrantRequestRow, 'id'>>;

/** A request's status as stored; `expired` is also derived from `pending_expires_at` (see `effectiveRequestStatus`). */
export type GrantRequestStatus = 'pending' | 'approved' | 'denied' | 'expired';

/** Filters and page of {@link GrantRequestStore.list}. `after` is the last id of the previous page. */
export interface GrantRequestQuery {
  group?: string;
  /** Effective status at the `nowMs` given to `list`. */
  status?: GrantRequestStatus;
  limit: number;
  after?: string;
}

/** What {@link GrantRequestStore.create} reads before its plan decides. */
export interface CreateContext {
  /** The request the group made earlier with the same Idempotency-Key, or null (always null without a key). */
  prior: GrantRequestRow | null;
  /** How many of the group's requests are pending (not yet expired) at the transaction's now. */
  pending: number;
}

/** Where access requests are kept. */
export interface GrantRequestStore {
  /** One request, or null. */
  get(id: string): Promise<GrantRequestRow | null>;
  /** Requests oldest first (by id), filtered, at most `limit`; `more` when others follow. */
  list(q: GrantRequestQuery, nowMs: number): Promise<{ rows: GrantRequestRow[]; more: boolean }>;
  /** The audit rows whose subject is the request, oldest first (at most 1000). */
  timeline(id: string): Promise<Activity[]>;
  /**
   * Creates a request in one transaction: reads the group's request made with `idempotencyKey`
   * (null without a key) and the group's pending count, lets `plan` decide, inserts the row it
   * returns (none on a replay) with its audit rows.
   */
  create<T>(group: string, idempotencyKey: string | null, plan: Plan<CreateContext, GrantRequestRow, T>): Promise<T>;
  /** Changes one request in one transaction: reads it (null when there is none), lets `plan` decide, applies its patch with its audit rows. */
  change<T>(id: string, plan: Plan<GrantRequestRow | null, GrantRequestPatch, T>): Promise<T>;
  /**
   * Stores `expired` on pending requests past their `pending_expires_at`, in one transaction:
   * reads at most `limit` of them (oldest deadline first), lets `plan` decide, applies its patch
   * to the ids it names, with its audit rows.
   */
  expireDue<T>(limit: number, plan: Plan<GrantRequestRow[], { ids: readonly string[]; set: GrantRequestPatch }, T>): Promise<T>;
  /**
   * Appends a refusal's audit row about request `id` in a transaction of its own, when the request
   * exists (a refusal about an unknown request leaves no row).
   * @returns whether it was appended; rejects with 503 `audit_unavailable`.
   */
  recordRefusal(id: string, row: ActivityInput): Promise<boolean>;
}

/** {@link GrantRequestStore} over SQLite. */
export function sqliteGrantRequestStore(db: Db, clock: Clock): GrantRequestStore {
  const r = grantRequests;
  const one = (id: string) => db.orm.select().from(r).where(eq(r.id, id)).get() ?? null;
  return {
    get: (id) => settled(() => one(id)),
    list: (q, now) =>
      settled(() => {
        const where: (SQL | undefined)[] = [q.group ? eq(r.group, q.group) : undefined, q.status ? statusCondition(q.status, now) : undefined, q.after ? gt(r.id, q.after) : undefined];
        const rows = db.orm.select().from(r).where(and(...where)).orderBy(asc(r.id)).limit(q.limit + 1).all();
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    timeline: (id) => settled(() => activitiesFor(db, id)),
    create: (group, key, plan) =>
      runPlan(
        db,
        clock,
        () => {
          const now = clock.now();
          const prior = key === null ? null : (db.orm.select().from(r).where(and(eq(r.group, group), eq(r.idempotencyKey, key))).get() ?? null);
          const pending = db.orm.select({ n: count() }).from(r).where(and(eq(r.group, group), statusCondition('pending', now))).get()?.n ?? 0;
          return { prior, pending };
        },
        plan,
        (row) => db.orm.insert(r).values(row).run(),
      ),
    change: (id, plan) =>
      runPlan(
        db,
        clock,
        () => one(id),
        plan,
        (set) => db.orm.update(r).set(set).where(eq(r.id, id)).run(),
      ),
    expireDue: (limit, plan) =>
      runPlan(
        db,
        clock,
        () =>
          db.orm
            .select()
            .from(r)
            .where(and(eq(r.status, 'pending'), lte(r.pendingExpiresAt, clock.now())))
            .orderBy(asc(r.pendingExpiresAt))
            .limit(limit)
            .all(),
        plan,
        (write) => {
          for (const id of write.ids) db.orm.update(r).set(write.set).where(and(eq(r.id, id), eq(r.status, 'pending'))).run();
        },
      ),
    recordRefusal: (id, row) =>
      runPlan(
        db,
        clock,
        () => one(id) !== null,
        (exists) => (exists ? { audit: [row], result: true } : { result: false }),
        () => {},
      ),
  };
}

/** Requests whose effective status at `now` is `status`: a stored `pending` past its deadline is `expired`. */
function statusCondition(status: GrantRequestStatus, now: number): SQL | undefined {
  const r = grantRequests;
  switch (status) {
    case 'pending':
      return and(eq(r.status, 'pending'), gt(r.pendingExpiresAt, now));
    case 'expired':
      return or(eq(r.status, 'expired'), and(eq(r.status, 'pending'), lte(r.pendingExpiresAt, now)));
    default:
      return eq(r.status, status);
  }
}
