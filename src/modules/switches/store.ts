/**
 * The kill switches' table behind the store seam (see `platform/db/seam.ts`): `kill_switches`.
 * Besides the asynchronous store, the SQLite implementation offers {@link ActiveSwitchReader}: the
 * decision path of every external call reads the active switches synchronously, with one query
 * over the `kill_switches_active_idx` index, so a switch set by any process on the same database
 * file takes effect at the next call.
 */
import { and, asc, eq, gt, isNull } from 'drizzle-orm';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { killSwitches } from './schema.js';

/** A `kill_switches` row. Times are Unix ms. */
export type KillSwitchRow = typeof killSwitches.$inferSelect;

/** What {@link SwitchStore.set} reads before its plan decides: the switch the same principal set with the same Idempotency-Key, or null. */
export interface SetContext {
  prior: KillSwitchRow | null;
}

/** The clearing of a switch: who, when (Unix ms), why. */
export interface ClearPatch {
  clearedBy: string;
  clearedAt: number;
  clearReason: string;
}

/** Where kill switches are kept. */
export interface SwitchStore {
  /** One switch, or null. */
  get(id: string): Promise<KillSwitchRow | null>;
  /** Switches by id (oldest first), only the active ones when `active`; at most `limit`, `more` when others follow. */
  list(q: { active?: boolean; limit: number; after?: string }): Promise<{ rows: KillSwitchRow[]; more: boolean }>;
  /** Sets a switch in one transaction: reads the prior switch of (`setBy`, `idempotencyKey`), lets `plan` decide, inserts its row (none on a replay) with its audit rows. */
  set<T>(setBy: string, idempotencyKey: string | null, plan: Plan<SetContext, KillSwitchRow, T>): Promise<T>;
  /** Clears a switch in one transaction: reads it (null when there is none), lets `plan` decide, applies its patch with its audit rows. */
  clear<T>(id: string, plan: Plan<KillSwitchRow | null, ClearPatch, T>): Promise<T>;
  /**
   * Every switch not cleared, oldest first, read from the database now: what the call path of an
   * engine without synchronous reads (PostgreSQL) reads before each decision, so a switch set or
   * cleared by any replica applies from the next call.
   */
  activeNow(): Promise<KillSwitchRow[]>;
}

/** The synchronous read of the decision path: every switch not cleared, oldest first. */
export interface ActiveSwitchReader {
  active(): KillSwitchRow[];
}

/** {@link SwitchStore} over SQLite, with its {@link ActiveSwitchReader}. */
export function sqliteSwitchStore(db: Db, clock: Clock): SwitchStore & ActiveSwitchReader {
  const k = killSwitches;
  const one = (id: string) => db.orm.select().from(k).where(eq(k.id, id)).get() ?? null;
  // The decision path runs this on every call: built and prepared once (on first use, after the
  // migrations), so a call pays one indexed read and no query building.
  let activeQuery: { all(): KillSwitchRow[] } | undefined;
  const activeRows = () => (activeQuery ??= db.orm.select().from(k).where(isNull(k.clearedAt)).orderBy(asc(k.id)).prepare()).all();
  return {
    get: (id) => settled(() => one(id)),
    list: (q) =>
      settled(() => {
        const rows = db.orm
          .select()
          .from(k)
          .where(and(q.active ? isNull(k.clearedAt) : undefined, q.after ? gt(k.id, q.after) : undefined))
          .orderBy(asc(k.id))
          .limit(q.limit + 1)
          .all();
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    set: (setBy, key, plan) =>
      runPlan(
        db,
        clock,
        () => ({ prior: key === null ? null : (db.orm.select().from(k).where(and(eq(k.setBy, setBy), eq(k.idempotencyKey, key))).get() ?? null) }),
        plan,
        (row) => db.orm.insert(k).values(row).run(),
      ),
    clear: (id, plan) =>
      runPlan(
        db,
        clock,
        () => one(id),
        plan,
        (patch) => db.orm.update(k).set(patch).where(and(eq(k.id, id), isNull(k.clearedAt))).run(),
      ),
    active: activeRows,
    activeNow: () => settled(activeRows),
  };
}

/** The synchronous reader of `store` when its engine has one (SQLite), else undefined. */
export function activeSwitchReaderOf(store: SwitchStore | undefined): ActiveSwitchReader | undefined {
  return store && typeof (store as Partial<ActiveSwitchReader>).active === 'function' ? (store as SwitchStore & ActiveSwitchReader) : undefined;
}
