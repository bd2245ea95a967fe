/**
 * Separation of powers at assignment: a gated task is never assigned to the approver of its gate
 * (Security → security; RevOps, Claims, Product → main), wherever `assigned_group` is set — on
 * create and on every transition — since the assigned group executes the task, and the executor
 * may neither approve nor override its gate. Tasks stored so before the rule stay recoverable.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DispatchJson } from '../../src/modules/kernel/service/dispatch.js';
import type { TaskState } from '../../src/modules/kernel/model.js';
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

/** The dispatches of task `id` `group` sees pending. */
async function dispatchesOf(group: string, id: string): Promise<DispatchJson[]> {
  const res = await broker.client(group).get('/v1/dispatches', { query: { status: 'pending', limit: '200' } });
  return (res.body.data as DispatchJson[]).filter((d) => d.task_id === id);
}

/** Every dispatch row of task `id`, whatever its group. */
async function storedDispatches(id: string): Promise<unknown[]> {
  const { database } = broker.deps;
  if (database.engine === 'postgres') return (await database.pg.pool.query('SELECT dispatch_key FROM task_dispatches WHERE task_id = $1 ORDER BY id', [id])).rows;
  return database.db.sqlite.prepare('SELECT dispatch_key FROM task_dispatches WHERE task_id = ? ORDER BY id').all(id);
}

/** Expects the refusal of assigning `group`, the approver of `gate`, to task `id` (null: a create). */
function expectRefused(res: { status: number; body: any }, id: string | null, gate: string, group: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(403);
  expect(res.body).toMatchObject({ code: 'separation_of_powers', gate, approver_group: group, assigned_group: group });
  const whose = id === null ? "The new task's" : `Task ${id}'s`;
  expect(res.body.detail).toBe(`${whose} ${gate} gate is approved by ${group}, so ${group} may not be assigned it (it would approve its own work); assign another group.`);
}

/**
 * main moves `t` to `to` assigning `approver`, the approver of its `gate`: expects the refusal, the
 * task unchanged (same JSON, same version), no new dispatch, and a `task.refused` audit row.
 */
async function expectRefusedMove(t: Seen, to: TaskState, gate: string, approver: string, extra: Record<string, unknown> = {}): Promise<void> {
  const dispatches = await storedDispatches(t.id);
  const audit = (await k.audit(t.id)).length;
  const res = await k.move('main', t, to, { assigned_group: approver, ...extra });
  expectRefused(res, t.id, gate, approver);
  expect((await k.get(t.id)).task).toEqual(t.task);
  expect(await storedDispatches(t.id)).toEqual(dispatches);
  const rows = (await k.audit(t.id)).slice(audit);
  expect(rows).toEqual([{ kind: 'task.refused', actor: 'main', detail: { action: 'transition', to, code: 'separation_of_powers', detail: res.body.detail } }]);
}

describe('POST /v1/tasks with assigned_group', () => {
  /** [type, explicit gate ('-': the type's), the gate, its approver]. */
  const APPROVER_ASSIGNED: [string, string, string, string][] = [
    ['PRODUCT', '-', 'Product', 'main'],
    ['SECURITY', '-', 'Security', 'security'],
    ['REVOPS', '-', 'RevOps', 'main'],
    ['CLAIMS', '-', 'Claims', 'main'],
    ['FEATURE', 'Product', 'Product', 'main'],
    ['BUG', 'Security', 'Security', 'security'],
  ];
  it.each(APPROVER_ASSIGNED)('refuses a %s task (gate asked: %s, so %s) assigned to its approver %s, audited, storing nothing', async (type, gate, gateName, approver) => {
    const title = `assign ${type} ${gateName} to ${approver}`;
    const res = await k.create({ title, type, ...(gate !== '-' ? { gate } : {}), assigned_group: approver });
    expectRefused(res, null, gateName, approver);
    expect((await k.audit('tasks')).at(-1)).toMatchObject({
      kind: 'task.refused',
      actor: 'main',
      detail: { action: 'create', code: 'separation_of_powers', detail: res.body.detail },
    });
    const list = await broker.client('main').get('/v1/tasks', { query: { limit: 200 } });
    expect(list.body.data.map((x: { title: string }) => x.title)).not.toContain(title);
  });

  it('still creates a gated task assigned to another group, and an ungated one assigned to anyone', async () => {
    for (const [type, group] of [
      ['PRODUCT', 'developer'],
      ['PRODUCT', 'security'],
      ['SECURITY', 'main'],
      ['SECURITY', 'developer'],
      ['BUG', 'main'],
      ['BUG', 'security'],
    ] as const) {
      const res = await k.create({ type, assigned_group: group });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ type, assigned_group: group, version: 1 });
    }
    // An explicit gate of none lifts the rule for a gated type.
    expect((await k.create({ type: 'PRODUCT', gate: 'none', assigned_group: 'main' })).body).toMatchObject({ gate: 'none', assigned_group: 'main' });
  });

  it('checks the group is known first (422), and replays an idempotent create as before', async () => {
    const main = broker.client('main');
    expect((await k.create({ type: 'PRODUCT', assigned_group: 'ghosts' })).body.code).toBe('validation_failed');

    // A refused create stores nothing: the same key and body are refused again, not replayed,
    // and the key is still free for a body that is allowed.
    const refused = { title: 'keyed', type: 'PRODUCT', assigned_group: 'main' };
    expectRefused(await main.post('/v1/tasks', refused, { idempotencyKey: 'assign-key-1' }), null, 'Product', 'main');
    expectRefused(await main.post('/v1/tasks', refused, { idempotencyKey: 'assign-key-1' }), null, 'Product', 'main');
    const allowed = { title: 'keyed', type: 'PRODUCT', assigned_group: 'developer' };
    const first = await main.post('/v1/tasks', allowed, { idempotencyKey: 'assign-key-1' });
    expect(first.status).toBe(201);
    const again = await main.post('/v1/tasks', allowed, { idempotencyKey: 'assign-key-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect((await main.post('/v1/tasks', refused, { idempotencyKey: 'assign-key-1' })).body.code).toBe('idempotency_key_reused');

    // A create stored before the rule, assigned to its approver, is still replayed as it is.
    const rawBody = JSON.stringify({ title: 'legacy keyed', type: 'PRODUCT', assigned_group: 'main' });
    const legacy = await k.insertRow({
      title: 'legacy keyed',
      type: 'PRODUCT',
      gate: 'Product',
      gateStatus: 'pending',
      assignedGroup: 'main',
      idempotencyKey: 'legacy-key-1',
      requestHash: createHash('sha256').update(rawBody).digest('hex'),
    });
    const replay = await main.request('POST', '/v1/tasks', { rawBody, idempotencyKey: 'legacy-key-1' });
    expect(replay.status, JSON.stringify(replay.body)).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(legacy.task);
    // The same body under a new key is a new create, and refused.
    expectRefused(await main.request('POST', '/v1/tasks', { rawBody, idempotencyKey: 'legacy-key-2' }), null, 'Product', 'main');
  });
});

describe('transitions carrying assigned_group', () => {
  it('refuses TRIAGED → READY assigning the approver (PRODUCT → main, SECURITY → security); another group is assigned', async () => {
    for (const [type, gate, approver, other] of [
      ['PRODUCT', 'Product', 'main', 'developer'],
      ['SECURITY', 'Security', 'security', 'main'],
    ] as const) {
      const t = await k.taskIn('TRIAGED', { type });
      await expectRefusedMove(t, 'READY', gate, approver);
      const ready = seen(await k.move('main', t, 'READY', { assigned_group: other }));
      expect(ready.task).toMatchObject({ state: 'READY', assigned_group: other, version: t.task.version + 1 });
    }
  });

  it('refuses a rework REVIEW → DOING that reassigns to the approver, with no dispatch; another group gets the rework', async () => {
    const t = await k.taskIn('REVIEW', { type: 'SECURITY' });
    await expectRefusedMove(t, 'DOING', 'Security', 'security');
    const moved = seen(await k.move('main', t, 'DOING', { assigned_group: 'main' }));
    expect(moved.task).toMatchObject({ state: 'DOING', assigned_group: 'main', version: t.task.version + 1 });
    // main made the move itself, so it carries no dispatch (as for any group's own move).
    expect(await storedDispatches(t.id)).toEqual([]);
  });

  it('refuses an unblock BLOCKED → DOING that reassigns to the approver; another group is assigned', async () => {
    const t = await k.taskIn('BLOCKED', { type: 'CLAIMS' });
    await expectRefusedMove(t, 'DOING', 'Claims', 'main');
    const moved = seen(await k.move('main', t, 'DOING', { assigned_group: 'security' }));
    expect(moved.task).toMatchObject({ state: 'DOING', assigned_group: 'security', blocked_from: null });
  });

  /** Every other move main may make with an `assigned_group`: [type, gate, from, to, approver, extra body]. */
  const OTHER_MOVES: [string, string, TaskState, TaskState, string, Record<string, unknown>][] = [
    ['REVOPS', 'RevOps', 'INBOX', 'TRIAGED', 'main', {}],
    ['SECURITY', 'Security', 'READY', 'BLOCKED', 'security', { reason: 'wrong team' }],
    ['PRODUCT', 'Product', 'DOING', 'BLOCKED', 'main', { reason: 'wrong team' }],
    ['SECURITY', 'Security', 'REVIEW', 'APPROVAL', 'security', {}],
    ['CLAIMS', 'Claims', 'APPROVAL', 'REVIEW', 'main', {}],
    ['SECURITY', 'Security', 'BLOCKED', 'DOING', 'security', {}],
  ];
  it.each(OTHER_MOVES)('refuses a %s task (%s gate) %s → %s assigning its approver %s', async (type, gate, from, to, approver, extra) => {
    const t = await k.taskIn(from, { type });
    await expectRefusedMove(t, to, gate, approver, extra);
  });

  it('leaves moves without assigned_group, and moves of ungated tasks, as they were', async () => {
    const bug = await k.taskIn('TRIAGED', { type: 'BUG' });
    expect((await k.move('main', bug, 'READY', { assigned_group: 'main' })).body).toMatchObject({ state: 'READY', assigned_group: 'main' });
    const sec = await k.taskIn('READY', { type: 'SECURITY' });
    expect((await k.move('main', sec, 'BLOCKED', { reason: 'waiting' })).body).toMatchObject({ state: 'BLOCKED', assigned_group: 'developer' });
  });
});

describe('a task stuck before the rule (assigned to and executed by its approver)', () => {
  it('is recovered by main: APPROVAL → REVIEW, rework reassigned to another group, executed, then approved by main', async () => {
    let t = await k.stuckInApproval('PRODUCT', 'main', { definitionOfDone: JSON.stringify([{ id: 1, text: 'ship', done: true }]) });
    expect(t.task).toMatchObject({ state: 'APPROVAL', gate: 'Product', gate_status: 'pending', assigned_group: 'main', executor_group: 'main', version: 6 });
    // The deadlock: main may neither approve nor override what it executed.
    expect((await k.mutate('main', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' })).body.code).toBe('separation_of_powers');
    expect((await k.mutate('main', 'POST', `/v1/tasks/${t.id}/override`, t, { reason: 'stuck', risk_acceptance: 'none' })).body.code).toBe('separation_of_powers');

    t = seen(await k.move('main', t, 'REVIEW', { reason: 'assigned to its own approver; reassigning' }));
    expect(t.task).toMatchObject({ state: 'REVIEW', gate_status: 'changes_requested' });
    // Reworking it as main again is still refused; another group takes it.
    expectRefused(await k.move('main', t, 'DOING', { assigned_group: 'main' }), t.id, 'Product', 'main');
    t = seen(await k.move('main', t, 'DOING', { assigned_group: 'developer' }));
    expect(t.task).toMatchObject({ state: 'DOING', assigned_group: 'developer' });
    expect(await dispatchesOf('developer', t.id)).toEqual([expect.objectContaining({ kind: 'execute', group: 'developer' })]);

    t = seen(await k.move('developer', t, 'REVIEW'));
    expect(t.task).toMatchObject({ state: 'REVIEW', executor_group: 'developer', gate_status: 'pending' });
    t = seen(await k.move('main', t, 'APPROVAL'));
    expect(await dispatchesOf('main', t.id)).toEqual([expect.objectContaining({ kind: 'approve', group: 'main' })]);
    t = seen(await k.mutate('main', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' }));
    expect(t.task).toMatchObject({ state: 'APPROVAL', gate_status: 'approved' });
    t = seen(await k.move('main', t, 'DONE'));
    expect(t.task).toMatchObject({ state: 'DONE', version: 12 });
    expect((await k.audit(t.id)).filter((a) => a.kind === 'task.gate_decision')).toEqual([expect.objectContaining({ actor: 'main', detail: expect.objectContaining({ decision: 'approved' }) })]);
  });

  it('is recovered the same way for a Security gate, approved by security', async () => {
    let t = await k.stuckInApproval('SECURITY', 'security', { docsUpdated: true });
    expect((await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' })).body.code).toBe('separation_of_powers');
    t = seen(await k.move('main', t, 'REVIEW'));
    t = seen(await k.move('main', t, 'DOING', { assigned_group: 'developer' }));
    t = seen(await k.move('developer', t, 'REVIEW'));
    t = seen(await k.move('main', t, 'APPROVAL'));
    t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' }));
    expect(t.task).toMatchObject({ gate_status: 'approved', executor_group: 'developer' });
    expect((await k.move('main', t, 'DONE')).body).toMatchObject({ state: 'DONE' });
  });
});
