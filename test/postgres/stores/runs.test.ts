/**
 * The runner's store on both engines: a claim inserts the run with its audit row, and three
 * replicas claiming one dispatch (under their own run ids) make one run (the others answer null, so no process starts
 * twice); an update applies only from the statuses named, so a finish and a cancel racing on two
 * replicas end the run once; the reads (find, by status, by task, claimed keys, pages, counts);
 * an audit failure that rolls the claim back; and an audit chain that verifies after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE, sqliteRunStore, type RunInsert, type RunStore } from '../../../src/modules/runner/store.js';
import { pgRunStore } from '../../../src/modules/runner/store.pg.js';
import type { ActivityInput } from '../../../src/platform/audit/trail.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);

const run = (n: number, over: Partial<RunInsert> = {}): RunInsert => ({
  id: `01RUN${String(n).padStart(21, '0')}`,
  dispatchKey: `dk-${n}`,
  dispatchId: `dsp-${n}`,
  taskId: `task-${n % 2}`,
  group: n % 2 === 0 ? 'developer' : 'security',
  status: 'claimed',
  contextFile: `/tmp/run-${n}.json`,
  createdAt: T0 + n,
  ...over,
});
const claimed = (r: RunInsert): ActivityInput => ({ actor: 'system', kind: 'run.claimed', subject: r.taskId, detail: { run_id: r.id, dispatch_key: r.dispatchKey } });

/** The run store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function runStoreBehaviours(engine: Engine, makeStore: (h: Handle) => RunStore): void {
  describe(`RunStore on ${engine.name}`, () => {
    let tdb: TestDatabase;
    let stores: RunStore[];

    beforeAll(async () => {
      tdb = await engine.open('runs');
      stores = tdb.replicas.map(makeStore);
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const runKinds = async (runId: string) =>
      (await tdb.rows<{ kind: string; detail: string }>(`SELECT kind, detail FROM gov_activities ORDER BY seq`)).filter((r) => (JSON.parse(r.detail) as { run_id?: string }).run_id === runId).map((r) => r.kind);

    it('claims a dispatch once with its audit row; three replicas claiming it again (even under new run ids) get null', async () => {
      const r1 = run(1);
      const row = await stores[0]!.claim(r1, claimed(r1));
      expect(row).toMatchObject({ id: r1.id, dispatchKey: 'dk-1', status: 'claimed', pid: null, exitCode: null, createdAt: T0 + 1, startedAt: null });
      const again = await Promise.all(stores.map((s, i) => s.claim(run(1, { id: `${r1.id}-dup${i}` }), claimed(r1))));
      expect(again).toEqual([null, null, null]);
      expect(await tdb.count('runs')).toBe(1);
      expect(await runKinds(r1.id)).toEqual(['run.claimed']);
    });

    it('three replicas racing to claim a new dispatch: exactly one run, one audit row', async () => {
      const r2 = run(2);
      const results = await Promise.all(stores.map((s, i) => s.claim({ ...r2, id: `${r2.id}-${i}` }, claimed({ ...r2, id: `${r2.id}-${i}` }))));
      const won = results.filter((r) => r !== null);
      expect(won).toHaveLength(1);
      expect(await tdb.count("runs WHERE dispatch_key = 'dk-2'")).toBe(1);
      expect(await runKinds(won[0]!.id)).toEqual(['run.claimed']);
      expect((await tdb.rows(`SELECT 1 FROM gov_activities WHERE kind = 'run.claimed'`)).length).toBe(2);
    });

    it('updates only from the statuses named, with its audit rows; a finish and a cancel racing end the run once', async () => {
      const id = run(1).id;
      const started = await stores[1]!.update(id, ['claimed'], { status: 'running', pid: 4242, startedAt: T0 + 10 }, [{ actor: 'system', kind: 'run.started', subject: 'task-1', detail: { run_id: id, pid: 4242 } }], T0 + 10);
      expect(started).toMatchObject({ id, status: 'running', pid: 4242, startedAt: T0 + 10 });
      expect(await stores[2]!.update(id, ['claimed'], { status: 'running' }, [{ actor: 'system', kind: 'run.started', subject: 'task-1', detail: { run_id: id } }], T0 + 11)).toBeNull();

      const ends = await Promise.all([
        stores[0]!.update(id, ACTIVE, { status: 'succeeded', exitCode: 0, finishedAt: T0 + 20 }, [{ actor: 'system', kind: 'run.succeeded', subject: 'task-1', detail: { run_id: id } }], T0 + 20),
        stores[1]!.update(id, ACTIVE, { status: 'cancelled', signal: 'SIGTERM', finishedAt: T0 + 20 }, [{ actor: 'operator:olga', kind: 'run.cancelled', subject: 'task-1', detail: { run_id: id } }], T0 + 20),
      ]);
      const done = ends.filter((e) => e !== null);
      expect(done).toHaveLength(1);
      const final = await stores[2]!.find(id);
      expect(final).toEqual(done[0]);
      expect(await runKinds(id)).toEqual(['run.claimed', 'run.started', final!.status === 'succeeded' ? 'run.succeeded' : 'run.cancelled']);
      // An update with no audit rows writes none.
      expect(await stores[0]!.update(id, [final!.status], { outputTail: 'bye' }, [], T0 + 30)).toMatchObject({ outputTail: 'bye' });
      expect(await runKinds(id)).toHaveLength(3);
    });

    it('reads by id, status, task, dispatch key, in pages, and counts by status', async () => {
      for (const n of [3, 4, 5]) await stores[n % 3]!.claim(run(n), claimed(run(n)));
      expect(await stores[0]!.find('01RUNnope')).toBeNull();
      const active = await stores[1]!.withStatus(ACTIVE);
      expect(active.map((r) => r.dispatchKey)).toEqual(expect.arrayContaining(['dk-2', 'dk-3', 'dk-4', 'dk-5']));
      expect(active.map((r) => r.id)).toEqual([...active.map((r) => r.id)].sort());
      const ofTask = await stores[2]!.ofTask('task-1');
      expect(ofTask.map((r) => r.dispatchKey)).toEqual(['dk-1', 'dk-3', 'dk-5']);
      expect(await stores[0]!.claimedKeys(['dk-1', 'dk-4', 'dk-none'])).toEqual(new Set(['dk-1', 'dk-4']));
      expect(await stores[0]!.claimedKeys([])).toEqual(new Set());

      const first = await stores[1]!.list({ limit: 2 });
      expect(first.rows).toHaveLength(2);
      expect(first.hasMore).toBe(true);
      const rest = await stores[1]!.list({ limit: 200, startingAfter: first.rows[1]!.id });
      expect([...first.rows, ...rest.rows].map((r) => r.id)).toEqual((await stores[0]!.list({ limit: 200 })).rows.map((r) => r.id));
      expect(rest.hasMore).toBe(false);
      expect((await stores[2]!.list({ limit: 200, group: 'security', status: 'claimed' })).rows.map((r) => r.dispatchKey)).toEqual(['dk-3', 'dk-5']);
      expect((await stores[2]!.list({ limit: 200, taskId: 'task-0' })).rows.map((r) => r.dispatchKey)).toEqual(['dk-2', 'dk-4']);

      const counts = await stores[0]!.counts();
      expect(counts.claimed).toBe(4);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(await tdb.count('runs'));
    });

    it('rolls a claim back when its audit row cannot be written (503 audit_unavailable), so the dispatch stays claimable', async () => {
      const r9 = run(9);
      const repair = await tdb.breakAudit();
      try {
        await expect(stores[0]!.claim(r9, claimed(r9))).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
        await expect(stores[1]!.update(run(3).id, ACTIVE, { status: 'failed' }, [{ actor: 'system', kind: 'run.failed', subject: 'task-1', detail: { run_id: run(3).id } }], T0 + 40)).rejects.toMatchObject({
          code: 'audit_unavailable',
        });
      } finally {
        await repair();
      }
      expect(await stores[2]!.find(r9.id)).toBeNull();
      expect(await stores[2]!.find(run(3).id)).toMatchObject({ status: 'claimed' });
      expect(await stores[1]!.claim(r9, claimed(r9))).toMatchObject({ id: r9.id });
      expect(await tdb.verifyChain()).toMatchObject({ ok: true });
    });
  });
}

for (const engine of ENGINES) {
  runStoreBehaviours(engine, (h) => (engine.name === 'sqlite' ? sqliteRunStore(sqliteOf(h)) : pgRunStore(pgOf(h))));
}
