import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DispatchJson } from '../../src/modules/kernel/service/dispatch.js';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { Kernel, seen, type Seen } from './helpers.js';

let broker: TestBroker;
let k: Kernel;
beforeAll(async () => {
  broker = await startBroker();
  k = new Kernel(broker);
});
afterAll(async () => {
  expect((await broker.verifyChain()).ok).toBe(true);
  await broker.stop();
});

/** `GET /v1/dispatches?status=…` as `group`, only those of task `id`. */
async function dispatchesOf(group: string, id: string, status: 'pending' | 'acked' = 'pending'): Promise<DispatchJson[]> {
  const res = await broker.client(group).get('/v1/dispatches', { query: { status, limit: '200' } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.data as DispatchJson[]).filter((d) => d.task_id === id);
}

/** Every dispatch row of task `id` in the database, whatever its group or status. */
function storedDispatches(id: string): Promise<{ dispatch_key: string; kind: string; group: string }[]> {
  return broker.rows('SELECT dispatch_key, kind, "group" FROM task_dispatches WHERE task_id = ? ORDER BY id', id);
}

/** The dispatches the loop creates for task `id` in one pass. */
async function loopDispatches(id: string) {
  return (await runDispatchOnce(broker.deps)).dispatched.filter((d) => d.taskId === id);
}

describe('main moving a gated task REVIEW → APPROVAL by hand', () => {
  it("tells the gate's approver: one approve dispatch, in the move's transaction, audited as main's", async () => {
    const review = await k.taskIn('REVIEW', { type: 'SECURITY', title: 'Rotate the signing key' });
    const res = await k.move('main', review, 'APPROVAL');
    expect(res.status).toBe(200);
    const moved = seen(res);
    // The answer is still the task.
    expect(moved.task).toMatchObject({ id: review.id, state: 'APPROVAL', gate: 'Security', gate_status: 'pending', version: review.task.version + 1 });
    expect(moved.etag).toBe(`"v${review.task.version + 1}"`);
    expect(Object.keys(res.body)).toEqual(Object.keys(review.task));

    const [d, ...more] = await dispatchesOf('security', review.id);
    expect(more).toEqual([]);
    // The loop's key scheme: the version the dispatch was decided on, i.e. the one the move left.
    expect(d).toMatchObject({
      kind: 'approve',
      group: 'security',
      target_state: 'APPROVAL',
      task_version: review.task.version,
      dispatch_key: `${review.id}:APPROVAL:${review.task.version}`,
      status: 'pending',
      acked_at: null,
    });
    expect(d!.task_version).toBe(moved.task.version - 1);
    expect(await dispatchesOf('developer', review.id)).toEqual([]);
    expect(await dispatchesOf('main', review.id)).toEqual([]);

    expect((await k.audit(review.id)).slice(-2)).toEqual([
      { kind: 'task.transition', actor: 'main', detail: { from: 'REVIEW', to: 'APPROVAL', version: moved.task.version, dispatch_id: d!.id } },
      {
        kind: 'dispatch.created',
        actor: 'main',
        detail: { dispatch_id: d!.id, dispatch_key: d!.dispatch_key, kind: 'approve', group: 'security', target_state: 'APPROVAL' },
      },
    ]);

    // The loop does not add a second one, now or later.
    expect(await loopDispatches(review.id)).toEqual([]);
    expect(await loopDispatches(review.id)).toEqual([]);
    expect((await storedDispatches(review.id))).toHaveLength(1);

    // The approver acts on it.
    expect((await broker.client('security').post(`/v1/dispatches/${d!.id}/ack`, {})).body).toMatchObject({ id: d!.id, status: 'acked' });
    const approved = seen(await k.mutate('security', 'POST', `/v1/tasks/${review.id}/gate`, moved, { decision: 'approve' }));
    expect(approved.task).toMatchObject({ state: 'APPROVAL', gate_status: 'approved' });
    expect((await storedDispatches(review.id))).toHaveLength(1);
  });

  it("dispatches to main for the gates main approves (RevOps), like the loop", async () => {
    const review = await k.taskIn('REVIEW', { type: 'REVOPS' });
    seen(await k.move('main', review, 'APPROVAL'));
    expect(await dispatchesOf('main', review.id)).toEqual([
      expect.objectContaining({ kind: 'approve', group: 'main', target_state: 'APPROVAL', dispatch_key: `${review.id}:APPROVAL:${review.task.version}` }),
    ]);
    expect((await k.audit(review.id)).at(-1)).toMatchObject({ kind: 'dispatch.created', actor: 'main', detail: { group: 'main', kind: 'approve' } });
    expect(await loopDispatches(review.id)).toEqual([]);
  });

  it('creates no dispatch for an ungated task', async () => {
    const review = await k.taskIn('REVIEW', { type: 'BUG' });
    const moved = seen(await k.move('main', review, 'APPROVAL'));
    expect(moved.task).toMatchObject({ state: 'APPROVAL', gate: 'none', gate_status: null });
    expect((await storedDispatches(review.id))).toEqual([]);
    expect((await k.audit(review.id)).at(-1)).toEqual({ kind: 'task.transition', actor: 'main', detail: { from: 'REVIEW', to: 'APPROVAL', version: moved.task.version } });
    expect((await k.audit(review.id)).filter((a) => a.kind === 'dispatch.created')).toEqual([]);
    expect(await loopDispatches(review.id)).toEqual([]);
  });

  it('after changes are requested and the task reworked, a second hand move gives a second, distinct approve dispatch', async () => {
    let t: Seen = await k.taskIn('REVIEW', { type: 'SECURITY' });
    const firstVersion = t.task.version;
    t = seen(await k.move('main', t, 'APPROVAL'));
    const [first] = await dispatchesOf('security', t.id);
    expect((await broker.client('security').post(`/v1/dispatches/${first!.id}/ack`, {})).status).toBe(200);

    t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'request_changes', reason: 'add a scan' }));
    expect(t.task).toMatchObject({ state: 'REVIEW', gate_status: 'changes_requested' });
    t = seen(await k.move('developer', t, 'DOING'));
    t = seen(await k.move('developer', t, 'REVIEW'));
    expect(t.task.gate_status).toBe('pending');
    const secondVersion = t.task.version;
    t = seen(await k.move('main', t, 'APPROVAL'));

    const pending = await dispatchesOf('security', t.id);
    expect(pending).toEqual([expect.objectContaining({ kind: 'approve', target_state: 'APPROVAL', task_version: secondVersion, dispatch_key: `${t.id}:APPROVAL:${secondVersion}` })]);
    expect(pending[0]!.id).not.toBe(first!.id);
    expect(secondVersion).toBeGreaterThan(firstVersion);
    expect((await storedDispatches(t.id)).map((d) => d.dispatch_key)).toEqual([`${t.id}:APPROVAL:${firstVersion}`, `${t.id}:APPROVAL:${secondVersion}`]);
    expect((await k.audit(t.id)).filter((a) => a.kind === 'dispatch.created').map((a) => a.actor)).toEqual(['main', 'main']);
    expect(await loopDispatches(t.id)).toEqual([]);
  });

  it('uses the loop\'s predicate: no dispatch while the gate is not pending (changes requested, not yet reworked)', async () => {
    let t: Seen = await k.taskIn('REVIEW', { type: 'SECURITY' });
    t = seen(await k.move('main', t, 'APPROVAL'));
    t = seen(await k.move('main', t, 'REVIEW'));
    expect(t.task.gate_status).toBe('changes_requested');
    expect(await loopDispatches(t.id)).toEqual([]);
    t = seen(await k.move('main', t, 'APPROVAL'));
    expect(t.task).toMatchObject({ state: 'APPROVAL', gate_status: 'changes_requested' });
    expect((await storedDispatches(t.id))).toHaveLength(1);
  });

  it('does not dispatch again when a task blocked in APPROVAL returns there (the approver was already told)', async () => {
    let t: Seen = await k.taskIn('REVIEW', { type: 'SECURITY' });
    t = seen(await k.move('main', t, 'APPROVAL'));
    t = seen(await k.move('main', t, 'BLOCKED', { reason: 'waiting on legal' }));
    t = seen(await k.move('main', t, 'APPROVAL'));
    expect(t.task).toMatchObject({ state: 'APPROVAL', gate_status: 'pending' });
    expect((await storedDispatches(t.id))).toHaveLength(1);
    expect(await dispatchesOf('security', t.id)).toHaveLength(1);
  });

  it('creates no dispatch when the move fails (stale If-Match, wrong group), and a retry cannot double it', async () => {
    const review = await k.taskIn('REVIEW', { type: 'SECURITY' });
    const stale = await k.move('main', review, 'APPROVAL', {}, `"v${review.task.version - 1}"`);
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('precondition_failed');
    const missing = await k.move('main', review, 'APPROVAL', {}, null);
    expect(missing.status).toBe(428);
    const wrongGroup = await k.move('developer', review, 'APPROVAL');
    expect(wrongGroup.status).toBe(403);
    expect((await k.get(review.id)).task).toMatchObject({ state: 'REVIEW', version: review.task.version });
    expect((await storedDispatches(review.id))).toEqual([]);
    expect((await k.audit(review.id)).filter((a) => a.kind === 'dispatch.created')).toEqual([]);

    expect((await k.move('main', review, 'APPROVAL')).status).toBe(200);
    const retry = await k.move('main', review, 'APPROVAL');
    expect(retry.status).toBe(412);
    expect((await storedDispatches(review.id))).toHaveLength(1);
    expect(await dispatchesOf('security', review.id)).toHaveLength(1);
  });

  it('whichever of the loop and a hand move comes first, the task moves once, with one dispatch under the one key', async () => {
    const once = async (t: Seen, actor: string) => {
      expect((await storedDispatches(t.id))).toEqual([{ dispatch_key: `${t.id}:APPROVAL:${t.task.version}`, kind: 'approve', group: 'security' }]);
      expect((await k.audit(t.id)).filter((a) => a.kind === 'task.transition' && a.detail['to'] === 'APPROVAL').map((a) => a.actor)).toEqual([actor]);
      expect((await k.audit(t.id)).filter((a) => a.kind === 'dispatch.created').map((a) => a.actor)).toEqual([actor]);
    };
    const handFirst = await k.taskIn('REVIEW', { type: 'SECURITY' });
    expect((await k.move('main', handFirst, 'APPROVAL')).status).toBe(200);
    expect(await loopDispatches(handFirst.id)).toEqual([]);
    await once(handFirst, 'main');

    const loopFirst = await k.taskIn('REVIEW', { type: 'SECURITY' });
    expect(await loopDispatches(loopFirst.id)).toEqual([expect.objectContaining({ dispatchKey: `${loopFirst.id}:APPROVAL:${loopFirst.task.version}` })]);
    expect((await k.move('main', loopFirst, 'APPROVAL')).status).toBe(412);
    const fresh = await k.get(loopFirst.id);
    expect((await k.move('main', fresh, 'APPROVAL')).body).toMatchObject({ code: 'illegal_transition', state: 'APPROVAL' });
    await once(loopFirst, 'system');
  });
});

describe('a hand move into DOING by another group than the assigned one', () => {
  it("main's rework REVIEW → DOING tells the assigned group: one execute dispatch under the move's key", async () => {
    const review = await k.taskIn('REVIEW', { type: 'BUG' });
    const before = review.task.version;
    const moved = seen(await k.move('main', review, 'DOING', { reason: 'the fix misses the empty-file case' }));
    expect(moved.task).toMatchObject({ state: 'DOING', assigned_group: 'developer' });
    expect(await dispatchesOf('developer', review.id)).toEqual([
      expect.objectContaining({ kind: 'execute', group: 'developer', target_state: 'DOING', task_version: before, dispatch_key: `${review.id}:DOING:${before}` }),
    ]);
    expect((await k.audit(review.id)).filter((a) => a.kind === 'dispatch.created')).toEqual([expect.objectContaining({ actor: 'main' })]);
    expect(await loopDispatches(review.id)).toEqual([]);
  });

  it('main unblocking BLOCKED → DOING tells the assigned group, and a reassignment tells the new one', async () => {
    const blocked = await k.taskIn('BLOCKED', { type: 'BUG' });
    const moved = seen(await k.move('main', blocked, 'DOING', { assigned_group: 'security' }));
    expect(moved.task).toMatchObject({ state: 'DOING', assigned_group: 'security' });
    expect((await storedDispatches(blocked.id))).toEqual([{ dispatch_key: `${blocked.id}:DOING:${blocked.task.version}`, kind: 'execute', group: 'security' }]);
  });

  it("the assigned group's own rework and unblock carry none: it made the move", async () => {
    let t: Seen = await k.taskIn('REVIEW', { type: 'BUG' });
    t = seen(await k.move('developer', t, 'DOING'));
    t = seen(await k.move('developer', t, 'BLOCKED', { reason: 'waiting on a vendor' }));
    t = seen(await k.move('developer', t, 'DOING'));
    expect(t.task.state).toBe('DOING');
    expect((await storedDispatches(t.id))).toEqual([]);
  });
});
