/**
 * {@link GrantStore} on PostgreSQL: the same tables, rows and plans as the SQLite store
 * (`store.ts`), for several broker replicas on one database.
 *
 * Every write takes the grant change-log lock (`PG_LOCKS.grantChanges`) first: the triggers on
 * `grants` and `grant_approvals` take it anyway at the first write (so `grant_changes` is in
 * commit order), and taking it before reading means grant writers on every replica are decided
 * one after the other, each reading what the one before committed, and never deadlock with the
 * trigger's lock. The rows a plan decides on are then read `FOR UPDATE`, and the audit rows are
 * appended last (the audit lock). An idempotency key's row is read under the same lock, and
 * `grants_idempotency_idx` backs it (a duplicate makes `runPlanPg` run the plan again, which then
 * answers the replay or the 422).
 */
import { and, asc, eq, gt, inArray, isNull, lte, or, sql, type SQL } from 'drizzle-orm';
import { govActivities } from '../../platform/audit/schema.pg.js';
import type { Activity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { failClosedPg, PG_LOCKS, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { runPlanPg } from '../../platform/db/seam.js';
import { approvers, grantApprovals, grantRenewals, grants } from './schema.pg.js';
import type { ApprovalRow, GrantRow, GrantStore, RenewalRow, StoredGrant } from './store.js';
import type { GrantStatus } from './types.js';

const g = grants;
const a = grantApprovals;
const LOCK_GRANTS = [PG_LOCKS.grantChanges] as const;

/** {@link GrantStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgGrantStore(pg: PgDb, clock: Clock): GrantStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  const approvalsOf = (tx: PgTx | PgDb['orm'], id: string): Promise<ApprovalRow[]> => tx.select().from(a).where(eq(a.grantId, id)).orderBy(asc(a.id));
  const stored = async (tx: PgTx | PgDb['orm'], row: GrantRow | undefined): Promise<StoredGrant | null> => (row ? { row, approvals: await approvalsOf(tx, row.id) } : null);
  const amenders = async (tx: PgTx, id: string): Promise<string[]> =>
    (
      await tx
        .select({ actor: govActivities.actor })
        .from(govActivities)
        .where(and(eq(govActivities.subject, id), eq(govActivities.kind, 'grant.amended')))
        .orderBy(asc(govActivities.seq))
    ).map((r) => r.actor);

  const renewalsOf = (tx: PgTx | PgDb['orm'], id: string): Promise<RenewalRow[]> => tx.select().from(grantRenewals).where(eq(grantRenewals.grantId, id)).orderBy(asc(grantRenewals.id));

  return {
    renewals: (id) => read(() => renewalsOf(pg.orm, id)),
    get: (id) => read(async () => stored(pg.orm, (await pg.orm.select().from(g).where(eq(g.id, id)))[0])),
    list: (q, now) =>
      read(async () => {
        const where: (SQL | undefined)[] = [
          q.group ? eq(g.group, q.group) : undefined,
          q.provider ? eq(g.provider, q.provider) : undefined,
          q.status ? statusCondition(q.status, now) : undefined,
          q.at !== undefined ? activeAt(q.at) : undefined,
          q.after ? gt(g.id, q.after) : undefined,
        ];
        const rows = await pg.orm.select().from(g).where(and(...where)).orderBy(asc(g.id)).limit(q.limit + 1);
        const page = rows.slice(0, q.limit);
        const decisions = page.length === 0 ? [] : await pg.orm.select().from(a).where(inArray(a.grantId, page.map((r) => r.id))).orderBy(asc(a.id));
        return { grants: page.map((row) => ({ row, approvals: decisions.filter((d) => d.grantId === row.id) })), more: rows.length > q.limit };
      }),
    timeline: (id) =>
      read(async () => {
        const rows = await pg.orm.select().from(govActivities).where(eq(govActivities.subject, id)).orderBy(asc(govActivities.seq)).limit(1000);
        return rows.map((r): Activity => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
      }),
    create: (requestedBy, key, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          locks: LOCK_GRANTS,
          read: async (tx) =>
            key === null ? null : stored(tx, (await tx.select().from(g).where(and(eq(g.requestedBy, requestedBy), eq(g.idempotencyKey, key))).for('update'))[0]),
          apply: async (tx, row) => {
            await tx.insert(g).values(row);
          },
        },
        plan,
      ),
    change: (id, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          locks: LOCK_GRANTS,
          read: async (tx) => {
            const found = await stored(tx, (await tx.select().from(g).where(eq(g.id, id)).for('update'))[0]);
            return found && { ...found, amendedBy: await amenders(tx, id), renewals: await renewalsOf(tx, id) };
          },
          apply: async (tx, write, _current, now) => {
            if (write.approval) await tx.insert(a).values({ ...write.approval, createdAt: now });
            if (write.set) await tx.update(g).set(write.set).where(eq(g.id, id));
            if (write.renewal?.insert) await tx.insert(grantRenewals).values(write.renewal.insert);
            for (const u of write.renewal?.update ?? []) if (u.ids.length > 0) await tx.update(grantRenewals).set(u.set).where(inArray(grantRenewals.id, [...u.ids]));
          },
        },
        plan,
      ),
    revokeAll: (group, provider, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          locks: LOCK_GRANTS,
          read: (tx) =>
            tx
              .select()
              .from(g)
              .where(and(eq(g.group, group), provider ? eq(g.provider, provider) : undefined, inArray(g.status, ['active', 'pending_approval'])))
              .orderBy(asc(g.id))
              .for('update'),
          apply: async (tx, write) => {
            if (write.ids.length > 0) await tx.update(g).set(write.set).where(inArray(g.id, [...write.ids]));
          },
        },
        plan,
      ),
    // No grant is written, so no grant lock: grants are never deleted, so "it exists" cannot change under the append.
    recordRefusal: (id, row) =>
      runPlanPg(
        pg,
        clock,
        { read: async (tx) => (await tx.select({ id: g.id }).from(g).where(eq(g.id, id))).length > 0 },
        (exists) => (exists ? { audit: [row], result: true } : { result: false }),
      ),
    // Ordered by byte value, as SQLite's BINARY collation orders them (ids are chosen by people).
    approvers: () => read(() => pg.orm.select().from(approvers).orderBy(asc(sql`${approvers.id} COLLATE "C"`))),
    addApprover: (id, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          // A new id has no row to lock: two replicas adding it at once collide on the primary key,
          // and the one that loses runs its plan again and sees the row.
          read: async (tx) => (await tx.select().from(approvers).where(eq(approvers.id, id)).for('update'))[0] ?? null,
          apply: async (tx, row, _current, now) => {
            await tx.insert(approvers).values({ ...row, createdAt: now });
          },
        },
        plan,
      ),
  };
}

/** Grants whose effective status at `now` is `status` (see `effectiveStatus`); as the SQLite store's. */
function statusCondition(status: GrantStatus, now: number): SQL | undefined {
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
  return and(lte(g.activatedAt, at), or(isNull(g.expiresAt), gt(g.expiresAt, at)), or(isNull(g.revokedAt), gt(g.revokedAt, at)));
}
