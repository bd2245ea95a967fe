/**
 * {@link GroupKeyStore} on PostgreSQL: the same `group_keys` rows and plans as the SQLite store
 * (`store.ts`), for several broker replicas on one database. A change reads the group's versions
 * `FOR UPDATE`, so two replicas rotating the same group are decided one after the other. A group
 * with no version yet has no row to lock: two replicas giving it version 1 at once (starting
 * together) collide on the primary key `(group, version)`, and the one that loses runs its plan
 * again, sees the version, and writes nothing. Every write bumps `group_keys_version` (a trigger),
 * the change sequence the in-memory key cache follows.
 */
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import { failClosedPg, type PgDb } from '../../platform/db/pg.js';
import { runPlanPg } from '../../platform/db/seam.js';
import { groupKeys } from './schema.pg.js';
import type { GroupKeyStore } from './store.js';

/** {@link GroupKeyStore} over PostgreSQL; `clock` gives each transaction its now (Unix ms). */
export function pgGroupKeyStore(pg: PgDb, clock: Clock): GroupKeyStore {
  const t = groupKeys;
  return {
    groupsWithKeys: () => failClosedPg(async () => new Set((await pg.orm.selectDistinct({ group: t.group }).from(t)).map((r) => r.group)), pg.label),
    change: (group, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: (tx) => tx.select().from(t).where(eq(t.group, group)).orderBy(asc(t.version)).for('update'),
          apply: async (tx, write, _current, now) => {
            if (write.retire && write.retire.versions.length > 0) {
              await tx
                .update(t)
                .set({ retiresAt: write.retire.retiresAt })
                .where(and(eq(t.group, group), inArray(t.version, [...write.retire.versions])));
            }
            if (write.add) await tx.insert(t).values({ group, version: write.add.version, createdAt: now });
          },
        },
        plan,
      ),
  };
}
