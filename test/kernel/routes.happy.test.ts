import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import type { TaskState } from '../../src/modules/kernel/model.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { Kernel, seen } from './helpers.js';

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

describe('POST /v1/tasks', () => {
  it('creates a task in INBOX with its ETag, Location and an audit row', async () => {
    const res = await k.create({ title: 'Rotate the deploy key', type: 'SECURITY', definition_of_done: ['rotate', 'update runbook'] });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('"v1"');
    expect(res.headers.get('location')).toBe(`/v1/tasks/${res.body.id}`);
    expect(res.body.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(res.body).toMatchObject({
      title: 'Rotate the deploy key',
      type: 'SECURITY',
      priority: 'P2',
      state: 'INBOX',
      gate: 'Security',
      gate_status: 'pending',
      assigned_group: null,
      executor_group: null,
      docs_updated: false,
      parent_task_id: null,
      version: 1,
      created_by: 'main',
      definition_of_done: [
        { id: 1, text: 'rotate', done: false },
        { id: 2, text: 'update runbook', done: false },
      ],
    });
    expect((await k.audit(res.body.id))).toEqual([expect.objectContaining({ kind: 'task.created', actor: 'main' })]);
  });

  it('defaults the gate from the type and honours an explicit one', async () => {
    expect((await k.create({ type: 'REVOPS' })).body.gate).toBe('RevOps');
    expect((await k.create({ type: 'CLAIMS' })).body.gate).toBe('Claims');
    expect((await k.create({ type: 'PRODUCT' })).body.gate).toBe('Product');
    expect((await k.create({ type: 'BUG' })).body).toMatchObject({ gate: 'none', gate_status: null });
    expect((await k.create({ type: 'BUG', gate: 'Security' })).body).toMatchObject({ gate: 'Security', gate_status: 'pending' });
  });

  it('replays a retry with the same Idempotency-Key and body instead of creating a second task', async () => {
    const main = broker.client('main');
    const body = { title: 'Once only', type: 'OPS' };
    const first = await main.post('/v1/tasks', body, { idempotencyKey: 'create-once-1' });
    const again = await main.post('/v1/tasks', body, { idempotencyKey: 'create-once-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.body.id).toBe(first.body.id);
    expect((await k.audit(first.body.id)).filter((a) => a.kind === 'task.created')).toHaveLength(1);
  });

  it('links a task to its parent', async () => {
    const parent = seen(await k.create());
    const child = await k.create({ parent_task_id: parent.id, priority: 'P1' });
    expect(child.body).toMatchObject({ parent_task_id: parent.id, priority: 'P1' });
  });
});

describe('GET /v1/tasks and /v1/tasks/{id}', () => {
  it('reads one task with its ETag, for any group', async () => {
    const t = seen(await k.create({ title: 'Readable' }));
    const res = await broker.client('security').get(`/v1/tasks/${t.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"v1"');
    expect(res.body).toEqual(t.task);
  });

  it('filters by state, group and type, and pages with starting_after', async () => {
    const a = await k.taskIn('READY', { type: 'DOCS', title: 'list-a' });
    const b = await k.taskIn('READY', { type: 'DOCS', title: 'list-b' });
    await k.taskIn('TRIAGED', { type: 'DOCS', title: 'list-c' });
    const main = broker.client('main');
    const page1 = await main.get('/v1/tasks', { query: { state: 'READY', group: 'developer', type: 'DOCS', limit: 1 } });
    expect(page1.status).toBe(200);
    expect(page1.body.data.map((t: { id: string }) => t.id)).toEqual([a.id]);
    expect(page1.body).toMatchObject({ has_more: true, next_cursor: a.id });
    const page2 = await main.get('/v1/tasks', { query: { state: 'READY', group: 'developer', type: 'DOCS', limit: 1, starting_after: a.id } });
    expect(page2.body.data.map((t: { id: string }) => t.id)).toEqual([b.id]);
    expect(page2.body).toMatchObject({ has_more: false, next_cursor: null });
    const triaged = await main.get('/v1/tasks', { query: { state: 'TRIAGED', type: 'DOCS' } });
    expect(triaged.body.data.map((t: { title: string }) => t.title)).toEqual(['list-c']);
  });
});

/** Every legal transition with an actor allowed to take it: [from, to, group, extra body, blocked from]. */
const LEGAL: [TaskState, TaskState, string, Record<string, unknown>?, TaskState?][] = [
  ['INBOX', 'TRIAGED', 'main'],
  ['TRIAGED', 'READY', 'main', { assigned_group: 'developer' }],
  ['READY', 'DOING', 'developer'],
  ['DOING', 'REVIEW', 'developer'],
  ['REVIEW', 'DOING', 'developer'],
  ['REVIEW', 'DOING', 'main'],
  ['REVIEW', 'APPROVAL', 'main'],
  ['APPROVAL', 'REVIEW', 'main'],
  ['APPROVAL', 'DONE', 'main'],
  ['INBOX', 'BLOCKED', 'main', { reason: 'needs a spec' }],
  ['TRIAGED', 'BLOCKED', 'main', { reason: 'needs a spec' }],
  ['READY', 'BLOCKED', 'developer', { reason: 'waiting on access' }],
  ['DOING', 'BLOCKED', 'developer', { reason: 'waiting on access' }],
  ['REVIEW', 'BLOCKED', 'main', { reason: 'reviewer away' }],
  ['APPROVAL', 'BLOCKED', 'main', { reason: 'legal review' }],
  ['BLOCKED', 'INBOX', 'main', {}, 'INBOX'],
  ['BLOCKED', 'TRIAGED', 'main', {}, 'TRIAGED'],
  ['BLOCKED', 'READY', 'developer', {}, 'READY'],
  ['BLOCKED', 'DOING', 'developer', {}, 'DOING'],
  ['BLOCKED', 'REVIEW', 'main', {}, 'REVIEW'],
  ['BLOCKED', 'APPROVAL', 'main', {}, 'APPROVAL'],
];

describe('POST /v1/tasks/{id}/transition: every legal transition', () => {
  it.each(LEGAL)('%s → %s by %s', async (from, to, group, extra = {}, blockedFrom) => {
    const t = await k.taskIn(from, {}, blockedFrom);
    expect(t.task.state).toBe(from);
    const res = await k.move(group, t, to, extra);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: to, version: t.task.version + 1 });
    expect(res.headers.get('etag')).toBe(`"v${t.task.version + 1}"`);
    // A move may be followed by the dispatch it carries (main's rework tells the assigned group).
    const last = (await k.audit(t.id)).filter((a) => a.kind === 'task.transition').at(-1)!;
    expect(last).toMatchObject({ actor: group, detail: { from, to, version: t.task.version + 1 } });
  });

  it('records the executor on DOING → REVIEW', async () => {
    const t = await k.taskIn('REVIEW');
    expect(t.task).toMatchObject({ executor_group: 'developer', assigned_group: 'developer' });
  });

  it('keeps where a task was blocked from and why, and clears both when it returns', async () => {
    const blocked = await k.taskIn('BLOCKED', {}, 'REVIEW');
    expect(blocked.task).toMatchObject({ state: 'BLOCKED', blocked_from: 'REVIEW', blocked_reason: 'waiting on a vendor' });
    const back = seen(await k.move('developer', blocked, 'REVIEW'));
    expect(back.task).toMatchObject({ state: 'REVIEW', blocked_from: null, blocked_reason: null });
  });

  it('lets main reassign while moving a task', async () => {
    const t = await k.taskIn('READY');
    const res = await k.move('main', t, 'BLOCKED', { reason: 'wrong team', assigned_group: 'security' });
    expect(res.body).toMatchObject({ state: 'BLOCKED', assigned_group: 'security' });
    expect((await k.audit(t.id)).at(-1)!.detail).toMatchObject({ assigned_group: 'security' });
  });
});

describe('a gated task end to end', () => {
  it('is dispatched, approved by security, checked off and DONE; its context tells the story', async () => {
    let t = await k.taskIn('DOING', { type: 'SECURITY', title: 'Pin the base image', definition_of_done: ['pin', 'scan'] });
    t = seen(await k.move('developer', t, 'REVIEW'));
    const pass = await runDispatchOnce(broker.deps);
    const approve = pass.dispatched.find((d) => d.taskId === t.id)!;
    expect(approve).toMatchObject({ kind: 'approve', group: 'security', targetState: 'APPROVAL', dispatchKey: `${t.id}:APPROVAL:${t.task.version}` });
    t = await k.get(t.id);
    expect(t.task.state).toBe('APPROVAL');

    t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve', reason: 'image digest pinned' }));
    expect(t.task).toMatchObject({ state: 'APPROVAL', gate_status: 'approved' });
    t = seen(await k.mutate('developer', 'PATCH', `/v1/tasks/${t.id}/dod`, t, { items: [{ id: 1, done: true }, { id: 2, done: true }], docs_updated: true }));
    expect(t.task.definition_of_done.every((i) => i.done)).toBe(true);
    t = seen(await k.move('main', t, 'DONE'));
    expect(t.task.state).toBe('DONE');

    const ctx = await broker.client('developer').get(`/v1/tasks/${t.id}/context`);
    expect(ctx.status).toBe(200);
    expect(ctx.headers.get('etag')).toBe(t.etag);
    expect(ctx.body.task).toEqual(t.task);
    expect(ctx.body.external_calls).toEqual([]);
    expect(ctx.body.gate_decisions).toEqual([expect.objectContaining({ gate: 'Security', decision: 'approved', actor: 'security', reason: 'image digest pinned' })]);
    expect(ctx.body.activity.map((a: { kind: string; actor: string }) => `${a.kind}/${a.actor}`)).toEqual([
      'task.created/main',
      'task.transition/main',
      'task.transition/main',
      'task.transition/developer',
      'task.transition/developer',
      'task.transition/system',
      'dispatch.created/system',
      'task.gate_decision/security',
      'task.dod_updated/developer',
      'task.transition/main',
    ]);
  });

  it('goes back to REVIEW on request_changes, stays there for rework, and is dispatched again under a new key', async () => {
    let t = await k.taskIn('REVIEW', { type: 'SECURITY' });
    await runDispatchOnce(broker.deps);
    t = await k.get(t.id);
    t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'request_changes', reason: 'add a scan' }));
    expect(t.task).toMatchObject({ state: 'REVIEW', gate_status: 'changes_requested' });
    expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.transition', actor: 'security', detail: { from: 'APPROVAL', to: 'REVIEW', decision: 'changes_requested' } });

    expect((await runDispatchOnce(broker.deps)).dispatched.filter((d) => d.taskId === t.id)).toEqual([]);
    t = seen(await k.move('developer', t, 'DOING'));
    t = seen(await k.move('developer', t, 'REVIEW'));
    expect(t.task.gate_status).toBe('pending');
    const again = (await runDispatchOnce(broker.deps)).dispatched.filter((d) => d.taskId === t.id);
    expect(again.map((d) => d.dispatchKey)).toEqual([`${t.id}:APPROVAL:${t.task.version}`]);
  });
});

describe('POST /v1/tasks/{id}/override', () => {
  it('sets the gate overridden and creates the P0 follow-up in the same change', async () => {
    const t = await k.taskIn('APPROVAL', { type: 'REVOPS', title: 'Change the pricing page' });
    const res = await k.mutate('main', 'POST', `/v1/tasks/${t.id}/override`, t, { reason: 'launch today', risk_acceptance: 'main accepts a wrong price for a day' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"v${t.task.version + 1}"`);
    expect(res.body.task).toMatchObject({ id: t.id, gate_status: 'overridden', version: t.task.version + 1 });
    const fu = res.body.follow_up;
    expect(fu).toMatchObject({ priority: 'P0', type: 'REVOPS', gate: 'RevOps', gate_status: 'pending', state: 'INBOX', parent_task_id: t.id, created_by: 'main' });
    expect(fu.description).toContain('main accepts a wrong price for a day');
    expect((await broker.client('main').get(`/v1/tasks/${fu.id}`)).body.parent_task_id).toBe(t.id);

    const decisions = (await broker.client('main').get(`/v1/tasks/${t.id}/context`)).body.gate_decisions;
    expect(decisions).toEqual([
      expect.objectContaining({ decision: 'overridden', actor: 'main', reason: 'launch today', risk_acceptance: 'main accepts a wrong price for a day', follow_up_task_id: fu.id }),
    ]);
    expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.override', actor: 'main', detail: { follow_up_task_id: fu.id, risk_acceptance: 'main accepts a wrong price for a day' } });
    expect((await k.audit(fu.id))).toEqual([expect.objectContaining({ kind: 'task.created', actor: 'main', detail: expect.objectContaining({ parent_task_id: t.id, priority: 'P0' }) })]);

    expect((await k.move('main', { id: t.id, etag: res.headers.get('etag')! }, 'DONE')).body.state).toBe('DONE');
  });
});

describe('the runner surface', () => {
  it('lists each group its pending dispatches and acks idempotently', async () => {
    const t = await k.taskIn('READY', { title: 'dispatch me' });
    const pass = await runDispatchOnce(broker.deps);
    const mine = pass.dispatched.find((d) => d.taskId === t.id)!;
    expect(mine).toMatchObject({ kind: 'execute', group: 'developer', targetState: 'DOING', taskVersion: t.task.version, status: 'pending' });
    expect((await k.get(t.id)).task).toMatchObject({ state: 'DOING', version: t.task.version + 1 });

    const dev = broker.client('developer');
    const pending = await dev.get('/v1/dispatches', { query: { status: 'pending' } });
    expect(pending.status).toBe(200);
    expect(pending.body.data.map((d: { id: string }) => d.id)).toContain(mine.id);
    expect(pending.body.data.every((d: { group: string; status: string }) => d.group === 'developer' && d.status === 'pending')).toBe(true);

    const ack1 = await dev.post(`/v1/dispatches/${mine.id}/ack`, {});
    const ack2 = await dev.post(`/v1/dispatches/${mine.id}/ack`, {});
    expect(ack1.status).toBe(200);
    expect(ack1.body).toMatchObject({ id: mine.id, status: 'acked', task_id: t.id, dispatch_key: `${t.id}:DOING:${t.task.version}` });
    expect(ack2.body).toEqual(ack1.body);
    expect((await k.audit(t.id)).filter((a) => a.kind === 'dispatch.acked')).toEqual([expect.objectContaining({ actor: 'developer', detail: expect.objectContaining({ dispatch_id: mine.id }) })]);

    const after = await dev.get('/v1/dispatches', { query: { status: 'pending' } });
    expect(after.body.data.map((d: { id: string }) => d.id)).not.toContain(mine.id);
    const acked = await dev.get('/v1/dispatches', { query: { status: 'acked' } });
    expect(acked.body.data.map((d: { id: string }) => d.id)).toContain(mine.id);
  });
});
