/**
 * {@link SwitchStore} on PostgreSQL: the same table, rows and plans as the SQLite store
 * (`store.ts`), for several broker replicas on one database.
 *
 * A set reads the prior switch of (`set_by`, Idempotency-Key) `FOR UPDATE`; when there is none yet,
 * two replicas setting under the same key at once collide on `kill_switches_idempotency_idx`, and
 * the one that loses runs its plan again (`runPlanPg`) and answers the replay or the 422. A clear
 * reads the switch `FOR UPDATE`, so two clears of one switch on two replicas are decided one after
 * the other (the second sees it cleared). There is no synchronous reader here: the call path reads
 * {@link SwitchStore.activeNow} before each decision (`calls/reads.ts`), from the database, so a
 * switch committed through any pool applies from the next call through every other.
 */
import { and, asc, eq, gt, isNull } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import { failClosedPg, type PgDb } from '../../platform/db/pg.js';
import { runPlanPg } from '../../platform/db/seam.js';
import { killSwitches } from './schema.pg.js';
import type { KillSwitchRow, SwitchStore } from './store.js';

const k = killSwitches;

/** {@link SwitchStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgSwitchStore(pg: PgDb, clock: Clock): SwitchStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  // Runs on every external call: a named prepared statement, parsed once per connection.
  const activeStmt = pg.orm.select().from(k).where(isNull(k.clearedAt)).orderBy(asc(k.id)).prepare('broker_kill_switches_active');
  return {
    get: (id) => read(async () => (await pg.orm.select().from(k).where(eq(k.id, id)))[0] ?? null),
    list: (q) =>
      read(async () => {
        const rows = await pg.orm
          .select()
          .from(k)
          .where(and(q.active ? isNull(k.clearedAt) : undefined, q.after ? gt(k.id, q.after) : undefined))
          .orderBy(asc(k.id))
          .limit(q.limit + 1);
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    set: (setBy, key, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx) => ({
            prior: key === null ? null : ((await tx.select().from(k).where(and(eq(k.setBy, setBy), eq(k.idempotencyKey, key))).for('update'))[0] ?? null),
          }),
          apply: async (tx, row: KillSwitchRow) => {
            await tx.insert(k).values(row);
          },
        },
        plan,
      ),
    clear: (id, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx) => (await tx.select().from(k).where(eq(k.id, id)).for('update'))[0] ?? null,
          apply: async (tx, patch) => {
            await tx.update(k).set(patch).where(and(eq(k.id, id), isNull(k.clearedAt)));
          },
        },
        plan,
      ),
    activeNow: () => read(() => activeStmt.execute()),
  };
}
