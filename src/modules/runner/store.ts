/**
 * The runner's storage seam: {@link RunStore}, what the runner service asks of a database, and
 * {@link sqliteRunStore}, its SQLite implementation (drizzle's query builder over `runs`). Every
 * method returns a promise; every write is one `BEGIN IMMEDIATE` transaction that changes the run
 * and appends its audit rows, or changes nothing and rejects.
 */
import { and, asc, eq, gt, inArray, type SQL } from 'drizzle-orm';
import { appendActivities, type ActivityInput } from '../../platform/audit/trail.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { runs, type RunStatus } from './schema.js';

/** A `runs` row. */
export type RunRow = typeof runs.$inferSelect;
/** What a claim inserts. */
export type RunInsert = typeof runs.$inferInsert;
/** The columns a finish or start may set. */
export type RunPatch = Partial<Pick<RunRow, 'status' | 'pid' | 'exitCode' | 'signal' | 'outputTail' | 'contextFile' | 'startedAt' | 'finishedAt'>>;

/** Statuses a run does not leave by itself: it is claimed, or its process is running. */
export const ACTIVE: readonly RunStatus[] = ['claimed', 'running'];

/** Filters for {@link RunStore.list}. */
export interface RunFilter {
  status?: RunStatus;
  group?: string;
  taskId?: string;
  /** Page size, 1–200. */
  limit: number;
  startingAfter?: string;
}

/** The runner's storage: runs and their audit rows. */
export interface RunStore {
  /**
   * Claims a dispatch for its runner: inserts the run (status `claimed`) under the unique
   * `dispatch_key` with its audit row, in one transaction committed before any process starts.
   * @returns the run, or null when the key already has a run (the dispatch was claimed before, by
   *   this or an earlier broker process): it must not be started again.
   * @throws 503 `audit_unavailable` and engine errors (nothing written).
   */
  claim(run: RunInsert, activity: ActivityInput): Promise<RunRow | null>;
  /**
   * Sets columns of a run still in one of `from`, with its audit rows.
   * @returns the run after, or null when it was no longer in `from` (another path ended it first).
   */
  update(id: string, from: readonly RunStatus[], patch: RunPatch, activities: ActivityInput[], nowMs: number): Promise<RunRow | null>;
  find(id: string): Promise<RunRow | null>;
  /** The runs in `statuses`, oldest first. */
  withStatus(statuses: readonly RunStatus[]): Promise<RunRow[]>;
  /** The runs of a task, oldest first. */
  ofTask(taskId: string): Promise<RunRow[]>;
  /** The dispatch keys among `keys` that already have a run. */
  claimedKeys(keys: string[]): Promise<Set<string>>;
  /** A page of runs, newest first. */
  list(filter: RunFilter): Promise<{ rows: RunRow[]; hasMore: boolean }>;
  /** Counts by status. */
  counts(): Promise<Record<string, number>>;
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The {@link RunStore} over one SQLite database. */
export function sqliteRunStore(db: Db): RunStore {
  return {
    async claim(run, activity) {
      try {
        return immediate(db, () => {
          const row = db.orm.insert(runs).values(run).returning().get();
          appendActivities(db, [activity], run.createdAt);
          return row;
        });
      } catch (err) {
        if (isUniqueViolation(err)) return null;
        throw err;
      }
    },

    async update(id, from, patch, activities, nowMs) {
      return immediate(db, () => {
        const row = db.orm
          .update(runs)
          .set(patch)
          .where(and(eq(runs.id, id), inArray(runs.status, [...from])))
          .returning()
          .get();
        if (!row) return null;
        if (activities.length > 0) appendActivities(db, activities, nowMs);
        return row;
      });
    },

    async find(id) {
      return db.orm.select().from(runs).where(eq(runs.id, id)).get() ?? null;
    },

    async withStatus(statuses) {
      return db.orm.select().from(runs).where(inArray(runs.status, [...statuses])).orderBy(asc(runs.id)).all();
    },

    async ofTask(taskId) {
      return db.orm.select().from(runs).where(eq(runs.taskId, taskId)).orderBy(asc(runs.id)).all();
    },

    async claimedKeys(keys) {
      if (keys.length === 0) return new Set();
      const rows = db.orm.select({ k: runs.dispatchKey }).from(runs).where(inArray(runs.dispatchKey, keys)).all();
      return new Set(rows.map((r) => r.k));
    },

    async list(f) {
      const where: SQL[] = [];
      if (f.status) where.push(eq(runs.status, f.status));
      if (f.group) where.push(eq(runs.group, f.group));
      if (f.taskId) where.push(eq(runs.taskId, f.taskId));
      if (f.startingAfter) where.push(gt(runs.id, f.startingAfter));
      const rows = db.orm.select().from(runs).where(and(...where)).orderBy(asc(runs.id)).limit(f.limit + 1).all();
      return { rows: rows.slice(0, f.limit), hasMore: rows.length > f.limit };
    },

    async counts() {
      const out: Record<string, number> = {};
      for (const r of db.orm.select({ s: runs.status }).from(runs).all()) out[r.s] = (out[r.s] ?? 0) + 1;
      return out;
    },
  };
}
