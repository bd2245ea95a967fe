/**
 * {@link TokenStore} on PostgreSQL: the same tables, rows and plans as the SQLite store
 * (`store.ts`), for several broker replicas on one database. Both bearer-request reads
 * (`findRevocation`, `key`) go to the database on every request, as on SQLite, so a revocation
 * or a rotation committed by any replica or CLI applies on the next request everywhere.
 *
 * A revocation takes the revocation lock (`PG_LOCKS.tokenRevocations`) before it reads: what a
 * plan decides on is partly the absence of rows (no revocation of this subject yet, no request
 * with this Idempotency-Key yet), which no row lock covers, so revocations on every replica are
 * decided one after the other (they are rare). `token_revocations_idempotency_idx` and
 * `token_revocations_jti_idx` stay as the last line of defence. A key's registration reads its row
 * `FOR UPDATE` and relies on the primary key when it is new (the replica that loses runs its plan
 * again and finds the row); a retirement locks every key row, in one order.
 */
import { and, asc, eq, gt, gte, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import { failClosedPg, PG_LOCKS, type PgDb, type PgTx } from '../../platform/db/pg.js';
import { appendAlonePg, runPlanPg } from '../../platform/db/seam.js';
import { tokenKeys, tokenRevocations } from './schema.pg.js';
import type { RevocationRow, RevocationTarget, TokenKeyRow, TokenStore } from './store.js';

const r = tokenRevocations;
const k = tokenKeys;

/** Keys oldest first, then by kid in byte order (SQLite's BINARY collation), whatever the database's collation. */
const KEY_ORDER = [asc(k.createdAt), asc(sql`${k.kid} COLLATE "C"`)] as const;

/** {@link TokenStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgTokenStore(pg: PgDb, clock: Clock): TokenStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  // Both run on every bearer request: named prepared statements, parsed once per connection.
  const findStmt = pg.orm
    .select({ id: r.id, revokedAt: r.revokedAt })
    .from(r)
    .where(
      or(
        eq(r.jti, sql.placeholder('jti')),
        and(eq(r.subject, sql.placeholder('subject')), gte(r.issuedBefore, sql.placeholder('iat')), or(isNull(r.role), eq(r.role, sql.placeholder('role')))),
      ),
    )
    .limit(1)
    .prepare('broker_token_revocation_find');
  const keyStmt = pg.orm.select().from(k).where(eq(k.kid, sql.placeholder('kid'))).prepare('broker_token_key');
  const existingFor = (tx: PgTx, target: RevocationTarget): Promise<RevocationRow[]> =>
    'jti' in target
      ? tx.select().from(r).where(eq(r.jti, target.jti))
      : tx
          .select()
          .from(r)
          .where(and(eq(r.subject, target.subject), target.role === undefined ? isNull(r.role) : or(isNull(r.role), eq(r.role, target.role))))
          .orderBy(asc(r.id));

  return {
    findRevocation: (p) => read(async () => (await findStmt.execute({ jti: p.jti, subject: p.subject, iat: p.issuedAtS, role: p.role }))[0] ?? null),
    revoke: (actor, idempotencyKey, target, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          locks: [PG_LOCKS.tokenRevocations],
          read: async (tx) => ({
            prior: idempotencyKey === null ? null : ((await tx.select().from(r).where(and(eq(r.revokedBy, actor), eq(r.idempotencyKey, idempotencyKey))))[0] ?? null),
            existing: await existingFor(tx, target),
          }),
          apply: async (tx, row) => {
            await tx.insert(r).values(row);
          },
        },
        plan,
      ),
    listRevocations: (f) =>
      read(async () => {
        const rows = await pg.orm
          .select()
          .from(r)
          .where(and(f.jti === undefined ? undefined : eq(r.jti, f.jti), f.subject === undefined ? undefined : eq(r.subject, f.subject), f.after === undefined ? undefined : gt(r.id, f.after)))
          .orderBy(asc(r.id))
          .limit(f.limit + 1);
        return { rows: rows.slice(0, f.limit), more: rows.length > f.limit };
      }),
    key: (kid) => read(async () => (await keyStmt.execute({ kid }))[0] ?? null),
    keys: () => read(() => pg.orm.select().from(k).orderBy(...KEY_ORDER)),
    registerKey: (kid, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx): Promise<TokenKeyRow | null> => (await tx.select().from(k).where(eq(k.kid, kid)).for('update'))[0] ?? null,
          apply: async (tx, row, _current, now) => {
            await tx.insert(k).values({ ...row, createdAt: now });
          },
        },
        plan,
      ),
    retireKeys: (plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: (tx) => tx.select().from(k).orderBy(...KEY_ORDER).for('update'),
          apply: async (tx, write, _current, now) => {
            if (write.kids.length === 0) return;
            await tx
              .update(k)
              .set({ retiredAt: now, verifyUntil: write.verifyUntil })
              .where(and(isNull(k.retiredAt), inArray(k.kid, [...write.kids])));
          },
        },
        plan,
      ),
    audit: (rows) => appendAlonePg(pg, clock, rows),
  };
}
