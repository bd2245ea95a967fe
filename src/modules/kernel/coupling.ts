/**
 * The kernel's contract with the call path's task coupling: the facts the decision path checks on
 * every L2+ call that names a task, read with one prepared primary-key lookup.
 *
 * The one read of the kernel outside `store.ts`, in raw SQL rather than the query builder: the
 * decision path is synchronous (it runs between the signature check and the claim of the call),
 * so this lookup cannot be a promise, and a statement prepared once per connection keeps it to a
 * single B-tree probe with no query building per call. An engine without synchronous reads gives
 * the call path its own way to answer it.
 */
import type { Db } from '../../platform/db/open.js';
import type { TaskState } from './schema.js';

export type { TaskState } from './schema.js';

/** What {@link findTaskForCoupling} returns. */
export interface CouplingTask {
  id: string;
  state: TaskState;
  assignedGroup: string | null;
}

interface Lookup {
  get(id: string): CouplingTask | undefined;
}
const lookups = new WeakMap<Db['sqlite'], Lookup>();

/**
 * The facts the capability broker's task coupling needs; null when no such task.
 * One prepared statement per connection (`SELECT … FROM tasks WHERE id = ?`), so it is cheap on the
 * hot path. Reads only; never throws for an unknown id.
 */
export function findTaskForCoupling(db: Db, taskId: string): CouplingTask | null {
  let stmt = lookups.get(db.sqlite);
  if (!stmt) {
    stmt = db.sqlite.prepare('SELECT id, state, assigned_group AS assignedGroup FROM tasks WHERE id = ?') as unknown as Lookup;
    lookups.set(db.sqlite, stmt);
  }
  return stmt.get(taskId) ?? null;
}
