import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import type { TaskState } from '../../src/modules/kernel/model.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { auditVerifyCli, Kernel, seen, type Seen } from './helpers.js';

let broker: TestBroker;
let k: Kernel;
beforeAll(async () => {
  broker = await startBroker();
  k = new Kernel(broker);
});
afterAll(() => broker.stop());

/** Moves a task assigned to `group` from INBOX to APPROVAL; `group` executes it. */
async function executedBy(group: string, body: Record<string, unknown>): Promise<Seen> {
  let t = seen(await k.create(body));
  t = seen(await k.move('main', t, 'TRIAGED'));
  t = seen(await k.move('main', t, 'READY', { assigned_group: group }));
  t = seen(await k.move(group, t, 'DOING'));
  t = seen(await k.move(group, t, 'REVIEW'));
  t = seen(await k.move('main', t, 'APPROVAL'));
  expect(t.task.executor_group).toBe(group);
  return t;
}

const gate = (group: string, t: Seen, decision: 'approve' | 'request_changes' = 'approve') => k.mutate(group, 'POST', `/v1/tasks/${t.id}/gate`, t, { decision });
const override = (group: string, t: Seen) => k.mutate(group, 'POST', `/v1/tasks/${t.id}/override`, t, { reason: 'urgent', risk_acceptance: 'accepted' });

describe('separation of powers', () => {
  // No route can assign a gated task to its gate's approver any more (routes.assignment.test.ts),
  // so the executor-is-approver state exists only in rows stored before that rule: write them.
  it('never lets the executor approve its own gate, even as the gate approver (403 separation_of_powers)', async () => {
    const sec = await k.stuckInApproval('SECURITY', 'security');
    const res = await gate('security', sec);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'separation_of_powers', executor_group: 'security' });
    expect((await gate('security', sec, 'request_changes')).body.code).toBe('separation_of_powers');
    expect((await k.audit(sec.id)).slice(-2)).toEqual([
      expect.objectContaining({ kind: 'task.refused', actor: 'security', detail: expect.objectContaining({ action: 'gate', decision: 'approve', code: 'separation_of_powers' }) }),
      expect.objectContaining({ kind: 'task.refused', actor: 'security', detail: expect.objectContaining({ action: 'gate', decision: 'request_changes', code: 'separation_of_powers' }) }),
    ]);

    const rev = await k.stuckInApproval('REVOPS', 'main');
    expect((await gate('main', rev)).body.code).toBe('separation_of_powers');
    expect((await override('main', rev)).body.code).toBe('separation_of_powers');
    expect((await k.get(rev.id)).task).toMatchObject({ gate_status: 'pending', version: rev.task.version });
    expect((await k.audit(rev.id)).map((a) => a.kind)).not.toContain('task.gate_decision');
    expect((await k.audit(rev.id)).slice(-2).map((a) => [a.kind, a.detail['action'], a.detail['code']])).toEqual([
      ['task.refused', 'gate', 'separation_of_powers'],
      ['task.refused', 'override', 'separation_of_powers'],
    ]);
  });

  it('lets only security approve a Security gate (developer and main get 403 forbidden)', async () => {
    const t = await executedBy('main', { type: 'SECURITY' });
    for (const group of ['developer', 'main']) {
      const res = await gate(group, t);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe(group === 'main' ? 'separation_of_powers' : 'forbidden');
      expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.refused', actor: group, detail: { action: 'gate', code: res.body.code } });
    }
    const dev = await executedBy('developer', { type: 'SECURITY', title: 'dev-executed' });
    expect((await gate('main', dev)).body.code).toBe('forbidden');
    expect((await gate('security', dev)).status).toBe(200);
  });

  it('lets only main approve RevOps, Claims and Product gates', async () => {
    for (const type of ['REVOPS', 'CLAIMS', 'PRODUCT']) {
      const t = await executedBy('developer', { type });
      expect((await gate('security', t)).body.code).toBe('forbidden');
      expect((await gate('main', t)).status).toBe(200);
    }
  });

  it('lets only main override (403 forbidden for every other group), creating no follow-up', async () => {
    const t = await executedBy('developer', { type: 'CLAIMS', title: 'override-me' });
    for (const group of ['developer', 'security']) {
      const res = await override(group, t);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.refused', actor: group, detail: { action: 'override', code: 'forbidden' } });
    }
    const all = await broker.client('main').get('/v1/tasks', { query: { type: 'CLAIMS', limit: 200 } });
    expect(all.body.data.filter((x: { parent_task_id: string | null }) => x.parent_task_id === t.id)).toEqual([]);
    expect((await override('main', t)).status).toBe(200);
  });
});

describe('who may do what', () => {
  it('lets only main create tasks', async () => {
    for (const group of ['developer', 'security']) {
      const res = await k.create({ title: `by ${group}` }, group);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect((await k.audit('tasks')).at(-1)).toMatchObject({ kind: 'task.refused', actor: group, detail: { action: 'create', code: 'forbidden' } });
    }
    const list = await broker.client('main').get('/v1/tasks', { query: { limit: 200 } });
    expect(list.body.data.map((x: { title: string }) => x.title)).not.toContain('by developer');
  });

  /** [state, target, group that may not, body]. */
  const FORBIDDEN: [TaskState, TaskState, string, Record<string, unknown>][] = [
    ['INBOX', 'TRIAGED', 'developer', {}],
    ['TRIAGED', 'READY', 'developer', { assigned_group: 'developer' }],
    ['READY', 'DOING', 'main', {}],
    ['READY', 'DOING', 'security', {}],
    ['DOING', 'REVIEW', 'main', {}],
    ['DOING', 'REVIEW', 'security', {}],
    ['REVIEW', 'APPROVAL', 'developer', {}],
    ['APPROVAL', 'DONE', 'developer', {}],
    ['APPROVAL', 'REVIEW', 'developer', {}],
    ['DOING', 'BLOCKED', 'security', { reason: 'meddling' }],
  ];
  it.each(FORBIDDEN)('refuses %s → %s by %s (403 forbidden)', async (state, to, group, body) => {
    const t = await k.taskIn(state);
    const res = await k.move(group, t, to, body);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'forbidden' });
    expect((await k.get(t.id)).task.version).toBe(t.task.version);
    expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.refused', actor: group, detail: { action: 'transition', to, code: 'forbidden' } });
  });

  it('lets only main assign, even on a move the group may make', async () => {
    const t = await k.taskIn('DOING');
    const res = await k.move('developer', t, 'REVIEW', { assigned_group: 'security' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
  });

  it('keeps the checklist to main, the assignee and the executor', async () => {
    const t = await k.taskIn('DOING', { definition_of_done: ['x'] });
    const res = await k.mutate('security', 'PATCH', `/v1/tasks/${t.id}/dod`, t, { items: [{ id: 1, done: true }] });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
  });
});

describe('dispatches are per group', () => {
  it("shows each group only its own, and hides another group's dispatch from its ack (404)", async () => {
    const t = await k.taskIn('READY', { title: 'for developer' });
    const d = (await runDispatchOnce(broker.deps)).dispatched.find((x) => x.taskId === t.id)!;
    const sec = await broker.client('security').get('/v1/dispatches', { query: { status: 'pending' } });
    expect(sec.body.data.map((x: { id: string }) => x.id)).not.toContain(d.id);
    const ack = await broker.client('security').post(`/v1/dispatches/${d.id}/ack`, {});
    expect(ack.status).toBe(404);
    expect((await broker.client('developer').get('/v1/dispatches', { query: { status: 'pending' } })).body.data.map((x: { id: string }) => x.id)).toContain(d.id);
  });
});

describe('signatures', () => {
  it('refuses unsigned task requests (401)', async () => {
    expect((await fetch(`${broker.url}/v1/tasks`)).status).toBe(401);
    const post = await fetch(`${broker.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"x","type":"BUG"}' });
    expect(post.status).toBe(401);
    expect((await fetch(`${broker.url}/v1/dispatches?status=pending`)).status).toBe(401);
  });
});

describe('afterwards', () => {
  it('the audit chain verifies, in-process and with `broker audit verify`', async () => {
    expect(await broker.verifyChain()).toMatchObject({ ok: true });
    expect(await auditVerifyCli(broker.dataDir)).toMatch(/^audit chain ok: \d+ rows verified/);
  });
});
