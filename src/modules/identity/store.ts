/**
 * The write side of the groups' key versions (`group_keys`), behind the store seam (see
 * `platform/db/seam.ts`). Which versions exist and when they retire is stored; the secrets are
 * derived from the master key and never stored. The in-memory cache `KeyStore` reads the table on
 * its own (the signature check's hot path) and learns of every write here through the
 * `group_keys_version` counter that triggers bump (the keys' change sequence).
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { groupKeys } from './schema.js';

/** One key version of a group: `createdAt` and `retiresAt` are Unix ms (`retiresAt` null while it does not retire). */
export type GroupKeyRow = typeof groupKeys.$inferSelect;

/** A change to one group's versions: the versions to retire at `retiresAt` (Unix ms), and the version to add (created now). */
export interface GroupKeyChange {
  retire?: { versions: readonly number[]; retiresAt: number };
  add?: { version: number };
}

/** Where the groups' key versions are kept. */
export interface GroupKeyStore {
  /** The groups that have at least one key version. */
  groupsWithKeys(): Promise<Set<string>>;
  /**
   * Changes one group's versions in one transaction: reads every version of `group`, lets `plan`
   * decide (with the clock's now), writes its {@link GroupKeyChange} and its audit rows.
   * @returns the plan's result; rejects with what the plan throws, or 503 `audit_unavailable`.
   */
  change<T>(group: string, plan: Plan<GroupKeyRow[], GroupKeyChange, T>): Promise<T>;
}

/** {@link GroupKeyStore} over SQLite. */
export function sqliteGroupKeyStore(db: Db, clock: Clock): GroupKeyStore {
  const t = groupKeys;
  return {
    groupsWithKeys: () => settled(() => new Set(db.orm.selectDistinct({ group: t.group }).from(t).all().map((r) => r.group))),
    change: (group, plan) =>
      runPlan(
        db,
        clock,
        () => db.orm.select().from(t).where(eq(t.group, group)).all(),
        plan,
        (write, _current, now) => {
          if (write.retire && write.retire.versions.length > 0) {
            db.orm
              .update(t)
              .set({ retiresAt: write.retire.retiresAt })
              .where(and(eq(t.group, group), inArray(t.version, [...write.retire.versions])))
              .run();
          }
          if (write.add) db.orm.insert(t).values({ group, version: write.add.version, createdAt: now }).run();
        },
      ),
  };
}
