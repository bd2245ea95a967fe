/**
 * The grants' tables behind the store seam (see `platform/db/seam.ts`): `grants`, their signed
 * decisions (`grant_approvals`) and the approvers added with the CLI (`approvers`). The decision
 * path does not read through here: it reads the in-memory index of `source.ts`, which learns of
 * every write here through the `grant_changes` log that triggers append.
 */
import { and, asc, eq, gt, inArray, isNull, lte, or, type SQL } from 'drizzle-orm';
import { activitiesFor, type Activity, type ActivityInput } from '../../platform/audit/trail.js';
import { govActivities } from '../../platform/audit/schema.js';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { approvers, grantApprovals, grantRenewals, grants } from './schema.js';
import type { GrantStatus } from './types.js';

/** A `grants` row. Times are Unix ms. */
export type GrantRow = typeof grants.$inferSelect;
/** A `grant_approvals` row: one signed decision. */
export type ApprovalRow = typeof grantApprovals.$inferSelect;
/** An `approvers` row: an approver added with `broker approvers add`. */
export type ApproverRow = typeof approvers.$inferSelect;
/** A `grant_renewals` row: one extension of a grant's expiry. */
export type RenewalRow = typeof grantRenewals.$inferSelect;
/** Changed columns of a grant. */
export type GrantPatch = Partial<Omit<GrantRow, 'id'>>;
/** A decision to record; its id is assigned and its `createdAt` is the transaction's now. */
export type NewApproval = Omit<ApprovalRow, 'id' | 'createdAt'>;

/** A grant with its decisions, oldest first. */
export interface StoredGrant {
  row: GrantRow;
  approvals: ApprovalRow[];
}

/**
 * A grant as a change sees it: also who amended it (the actors of its `grant.amended` audit rows,
 * oldest first) and its renewals (oldest first).
 */
export interface GrantState extends StoredGrant {
  amendedBy: string[];
  renewals: RenewalRow[];
}

/** What a change of one grant writes: columns of its row, one more decision, and/or renewal rows to insert or change. */
export interface GrantChange {
  set?: GrantPatch;
  approval?: NewApproval;
  renewal?: { insert?: RenewalRow; update?: { ids: readonly string[]; set: Partial<Omit<RenewalRow, 'id'>> }[] };
}

/** Filters and page of {@link GrantStore.list}. `at` is Unix ms; `after` is the last id of the previous page. */
export interface GrantQuery {
  group?: string;
  provider?: string;
  /** Effective status at the `nowMs` given to `list`. */
  status?: GrantStatus;
  /** Only grants that were active at this instant (activated, not yet expired, not yet revoked). */
  at?: number;
  limit: number;
  after?: string;
}

/** Where grants, their decisions and the CLI-added approvers are kept. */
export interface GrantStore {
  /** One grant with its decisions, or null. */
  get(id: string): Promise<StoredGrant | null>;
  /** Grants oldest first (by id), filtered, at most `limit`, with their decisions; `more` when others follow. */
  list(q: GrantQuery, nowMs: number): Promise<{ grants: StoredGrant[]; more: boolean }>;
  /** The grant's renewals, oldest first. */
  renewals(id: string): Promise<RenewalRow[]>;
  /** The audit rows whose subject is the grant, oldest first (at most 1000). */
  timeline(id: string): Promise<Activity[]>;
  /**
   * Creates a grant in one transaction: reads the grant `requestedBy` created with
   * `idempotencyKey` (null without a key), lets `plan` decide, inserts the row it returns with its
   * audit rows.
   */
  create<T>(requestedBy: string, idempotencyKey: string | null, plan: Plan<StoredGrant | null, GrantRow, T>): Promise<T>;
  /** Changes one grant in one transaction: reads it (null when there is none), lets `plan` decide, writes its {@link GrantChange} and audit rows. */
  change<T>(id: string, plan: Plan<GrantState | null, GrantChange, T>): Promise<T>;
  /**
   * Changes every `active` or `pending_approval` grant of `group` (of `provider`, when given) in
   * one transaction: reads them, lets `plan` decide, applies its patch to the ids it names, with its audit rows.
   */
  revokeAll<T>(group: string, provider: string | undefined, plan: Plan<GrantRow[], { ids: readonly string[]; set: GrantPatch }, T>): Promise<T>;
  /**
   * Appends a refusal's audit row about grant `id` in a transaction of its own, when the grant
   * exists (a refusal of an unknown grant leaves no row).
   * @returns whether it was appended; rejects with 503 `audit_unavailable`.
   */
  recordRefusal(id: string, row: ActivityInput): Promise<boolean>;
  /** The approvers added with the CLI, by id. */
  approvers(): Promise<ApproverRow[]>;
  /** Adds an approver in one transaction: reads the row of `id` (null when new), lets `plan` decide, inserts the row it returns (`createdAt` = now). */
  addApprover<T>(id: string, plan: Plan<ApproverRow | null, Omit<ApproverRow, 'createdAt'>, T>): Promise<T>;
}

/** {@link GrantStore} over SQLite. */
export function sqliteGrantStore(db: Db, clock: Clock): GrantStore {
  const g = grants;
  const a = grantApprovals;
  const approvalsOf = (id: string) => db.orm.select().from(a).where(eq(a.grantId, id)).orderBy(asc(a.id)).all();
  const stored = (row: GrantRow | undefined): StoredGrant | null => (row ? { row, approvals: approvalsOf(row.id) } : null);
  const amenders = (id: string) =>
    db.orm
      .select({ actor: govActivities.actor })
      .from(govActivities)
      .where(and(eq(govActivities.subject, id), eq(govActivities.kind, 'grant.amended')))
      .orderBy(asc(govActivities.seq))
      .all()
      .map((r) => r.actor);

  return {
    get: (id) => settled(() => stored(db.orm.select().from(g).where(eq(g.id, id)).get())),
    list: (q, now) =>
      settled(() => {
        const where: (SQL | undefined)[] = [
          q.group ? eq(g.group, q.group) : undefined,
          q.provider ? eq(g.provider, q.provider) : undefined,
          q.status ? statusCondition(q.status, now) : undefined,
          q.at !== undefined ? activeAt(q.at) : undefined,
          q.after ? gt(g.id, q.after) : undefined,
        ];
        const rows = db.orm.select().from(g).where(and(...where)).orderBy(asc(g.id)).limit(q.limit + 1).all();
        const page = rows.slice(0, q.limit);
        const decisions = page.length === 0 ? [] : db.orm.select().from(a).where(inArray(a.grantId, page.map((r) => r.id))).orderBy(asc(a.id)).all();
        return { grants: page.map((row) => ({ row, approvals: decisions.filter((d) => d.grantId === row.id) })), more: rows.length > q.limit };
      }),
    timeline: (id) => settled(() => activitiesFor(db, id)),
    renewals: (id) => settled(() => db.orm.select().from(grantRenewals).where(eq(grantRenewals.grantId, id)).orderBy(asc(grantRenewals.id)).all()),
    create: (requestedBy, key, plan) =>
      runPlan(
        db,
        clock,
        () => (key === null ? null : stored(db.orm.select().from(g).where(and(eq(g.requestedBy, requestedBy), eq(g.idempotencyKey, key))).get())),
        plan,
        (row) => db.orm.insert(g).values(row).run(),
      ),
    change: (id, plan) =>
      runPlan(
        db,
        clock,
        () => {
          const found = stored(db.orm.select().from(g).where(eq(g.id, id)).get());
          return found && { ...found, amendedBy: amenders(id), renewals: db.orm.select().from(grantRenewals).where(eq(grantRenewals.grantId, id)).orderBy(asc(grantRenewals.id)).all() };
        },
        plan,
        (write, _current, now) => {
          if (write.approval) db.orm.insert(a).values({ ...write.approval, createdAt: now }).run();
          if (write.set) db.orm.update(g).set(write.set).where(eq(g.id, id)).run();
          if (write.renewal?.insert) db.orm.insert(grantRenewals).values(write.renewal.insert).run();
          for (const u of write.renewal?.update ?? []) if (u.ids.length > 0) db.orm.update(grantRenewals).set(u.set).where(inArray(grantRenewals.id, [...u.ids])).run();
        },
      ),
    revokeAll: (group, provider, plan) =>
      runPlan(
        db,
        clock,
        () =>
          db.orm
            .select()
            .from(g)
            .where(and(eq(g.group, group), provider ? eq(g.provider, provider) : undefined, inArray(g.status, ['active', 'pending_approval'])))
            .all(),
        plan,
        (write) => {
          for (const id of write.ids) db.orm.update(g).set(write.set).where(eq(g.id, id)).run();
        },
      ),
    recordRefusal: (id, row) =>
      runPlan(
        db,
        clock,
        () => db.orm.select({ id: g.id }).from(g).where(eq(g.id, id)).get() !== undefined,
        (exists) => (exists ? { audit: [row], result: true } : { result: false }),
        () => {},
      ),
    approvers: () => settled(() => db.orm.select().from(approvers).orderBy(asc(approvers.id)).all()),
    addApprover: (id, plan) =>
      runPlan(
        db,
        clock,
        () => db.orm.select().from(approvers).where(eq(approvers.id, id)).get() ?? null,
        plan,
        (row, _current, now) => db.orm.insert(approvers).values({ ...row, createdAt: now }).run(),
      ),
  };
}

/** Grants whose effective status at `now` is `status` (see `effectiveStatus`). */
function statusCondition(status: GrantStatus, now: number): SQL | undefined {
  const g = grants;
  switch (status) {
    case 'active':
      return and(eq(g.status, 'active'), or(isNull(g.expiresAt), gt(g.expiresAt, now)));
    case 'pending_approval':
      return and(eq(g.status, 'pending_approval'), gt(g.pendingExpiresAt, now));
    case 'expired':
      return or(and(eq(g.status, 'active'), lte(g.expiresAt, now)), and(eq(g.status, 'pending_approval'), lte(g.pendingExpiresAt, now)));
    default:
      return eq(g.status, status);
  }
}

/** Grants active at `at` (Unix ms): activated by then, not yet expired nor revoked. */
function activeAt(at: number): SQL | undefined {
  const g = grants;
  return and(lte(g.activatedAt, at), or(isNull(g.expiresAt), gt(g.expiresAt, at)), or(isNull(g.revokedAt), gt(g.revokedAt, at)));
}
