/**
 * The kernel's store seam on a real SQLite file: a write and its audit rows land together or not
 * at all, and a dispatch key is taken once.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { openDb, type Db } from '../../src/platform/db/open.js';
import { loadGroups } from '../../src/modules/identity/groups.js';
import { dispatchKey } from '../../src/modules/kernel/dispatch-plan.js';
import type { KernelDeps } from '../../src/modules/kernel/service/common.js';
import { createTask } from '../../src/modules/kernel/service/create.js';
import { dispatchTask } from '../../src/modules/kernel/service/dispatch.js';
import { transitionTask } from '../../src/modules/kernel/service/transition.js';
import { sqliteTaskStore } from '../../src/modules/kernel/store.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';

let db: Db;
let deps: KernelDeps;
beforeEach(() => {
  db = openDb({ path: path.join(tempDir(), 'kernel.db'), synchronous: 'NORMAL' });
  deps = { tasks: sqliteTaskStore(db), clock: new ManualClock(), groups: loadGroups(path.join(REPO_ROOT, 'policies')) };
});
afterEach(() => {
  db.sqlite.close();
});

const count = (sql: string) => (db.sqlite.prepare(sql).get() as { n: number }).n;
const auditRows = () => count('SELECT count(*) AS n FROM gov_activities');

/** A READY task assigned to developer, made through the services. */
async function readyTask(): Promise<string> {
  const { task } = await createTask(deps, 'main', { title: 'seam', type: 'BUG', assigned_group: 'developer' }, null);
  await transitionTask(deps, task.id, 'main', '"v1"', { to: 'TRIAGED' });
  await transitionTask(deps, task.id, 'main', '"v2"', { to: 'READY' });
  return task.id;
}

describe('the SQLite task store', () => {
  it('changes nothing when the audit rows cannot be appended (503 audit_unavailable)', async () => {
    const id = await readyTask();
    const before = auditRows();
    db.sqlite.exec(`CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);

    await expect(transitionTask(deps, id, 'developer', '"v3"', { to: 'DOING' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    await expect(createTask(deps, 'main', { title: 'never', type: 'BUG' }, { key: 'k-1', requestHash: 'h' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    await expect(dispatchTask(deps, id)).rejects.toMatchObject({ code: 'audit_unavailable' });

    db.sqlite.exec('DROP TRIGGER temp.refuse_audit');
    expect(await deps.tasks.find(id)).toMatchObject({ state: 'READY', version: 3 });
    expect(count('SELECT count(*) AS n FROM tasks')).toBe(1);
    expect(count('SELECT count(*) AS n FROM task_dispatches')).toBe(0);
    expect(auditRows()).toBe(before);
  });

  it('takes a dispatch key once: a second write of it rolls back its whole move', async () => {
    const id = await readyTask();
    const first = await dispatchTask(deps, id);
    expect(first).toMatchObject({ dispatchKey: dispatchKey(id, 'DOING', 3), kind: 'execute', group: 'developer' });
    const after = { task: await deps.tasks.find(id), audit: auditRows() };

    // A plan that makes the same move again (as if it had read version 3): the task write would
    // pass on its own, but the dispatch key is taken, so nothing of it stays.
    const replay = (current: Parameters<Parameters<typeof deps.tasks.dispatch>[1]>[0]) => ({
      nowMs: 1,
      patch: { state: 'REVIEW' as const },
      dispatch: { ...first!, id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', taskId: current!.id },
      activities: [{ actor: 'system', kind: 'task.transition', subject: id }],
    });
    expect(await deps.tasks.dispatch(id, replay)).toBeNull();
    await expect(deps.tasks.change(id, replay)).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });

    expect(await deps.tasks.find(id)).toEqual(after.task);
    expect(auditRows()).toBe(after.audit);
    expect(await dispatchTask(deps, id)).toBeNull();
    expect(count('SELECT count(*) AS n FROM task_dispatches')).toBe(1);
  });
});
