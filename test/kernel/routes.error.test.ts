import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const NO_SUCH_TASK = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

describe('generic request checks on POST /v1/tasks', () => {
  it('answers malformed JSON with 400 malformed_json', async () => {
    const res = await broker.client('main').request('POST', '/v1/tasks', { rawBody: '{"title": "x",' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({ code: 'malformed_json', status: 400 });
  });

  it('answers a schema violation with 422 validation_failed and the zod issues', async () => {
    const res = await broker.client('main').post('/v1/tasks', { title: '', type: 'EPIC', priority: 'P9', surprise: true });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    const paths = res.body.issues.map((i: { path: string[] }) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['title', 'type', 'priority']));
    expect(res.body.issues.find((i: { code: string }) => i.code === 'unrecognized_keys')).toBeTruthy();
    expect(await broker.client('main').get('/v1/tasks')).toMatchObject({ body: { data: [] } });
  });

  it('refuses an unknown assigned group or parent with 422', async () => {
    const g = await k.create({ assigned_group: 'nobody' });
    expect(g.status).toBe(422);
    expect(g.body.issues[0].path).toEqual(['assigned_group']);
    const p = await k.create({ parent_task_id: NO_SUCH_TASK });
    expect(p.status).toBe(422);
    expect(p.body.issues[0].path).toEqual(['parent_task_id']);
  });

  it('refuses a reused Idempotency-Key with another body (422 idempotency_key_reused)', async () => {
    const main = broker.client('main');
    expect((await main.post('/v1/tasks', { title: 'one', type: 'BUG' }, { idempotencyKey: 'reuse-me' })).status).toBe(201);
    const res = await main.post('/v1/tasks', { title: 'two', type: 'BUG' }, { idempotencyKey: 'reuse-me' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('idempotency_key_reused');
  });

  it('refuses bad list filters with 422', async () => {
    const res = await broker.client('main').get('/v1/tasks', { query: { state: 'SOMEDAY', limit: 0 } });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('unknown tasks', () => {
  it.each([NO_SUCH_TASK, 'not-a-ulid'])('answers 404 for %s', async (id) => {
    const get = await broker.client('main').get(`/v1/tasks/${id}`);
    expect(get.status).toBe(404);
    expect(get.body.code).toBe('not_found');
    const move = await k.move('main', { id, etag: '"v1"' }, 'TRIAGED');
    expect(move.status).toBe(404);
  });
});

/** A sample of illegal transitions: [from, to, blocked from, the allowed targets the error names]. */
const ILLEGAL: [TaskState, TaskState, TaskState | undefined, TaskState[]][] = [
  ['INBOX', 'DOING', undefined, ['TRIAGED', 'BLOCKED']],
  ['INBOX', 'DONE', undefined, ['TRIAGED', 'BLOCKED']],
  ['TRIAGED', 'DOING', undefined, ['READY', 'BLOCKED']],
  ['READY', 'REVIEW', undefined, ['DOING', 'BLOCKED']],
  ['DOING', 'APPROVAL', undefined, ['REVIEW', 'BLOCKED']],
  ['DOING', 'DONE', undefined, ['REVIEW', 'BLOCKED']],
  ['REVIEW', 'DONE', undefined, ['DOING', 'APPROVAL', 'BLOCKED']],
  ['APPROVAL', 'DOING', undefined, ['REVIEW', 'DONE', 'BLOCKED']],
  ['DONE', 'BLOCKED', undefined, []],
  ['DONE', 'REVIEW', undefined, []],
  ['BLOCKED', 'REVIEW', 'DOING', ['DOING']],
  ['BLOCKED', 'BLOCKED', 'READY', ['READY']],
  ['READY', 'READY', undefined, ['DOING', 'BLOCKED']],
];

describe('illegal transitions', () => {
  it.each(ILLEGAL)('%s → %s answers 409 illegal_transition naming what is allowed', async (from, to, blockedFrom, allowed) => {
    const t = await k.taskIn(from, {}, blockedFrom);
    const auditBefore = (await k.audit(t.id)).length;
    const res = await k.move('main', t, to, { reason: 'try it' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'illegal_transition', state: from, allowed });
    for (const s of allowed) expect(res.body.detail).toContain(s);
    expect((await k.get(t.id)).task.version).toBe(t.task.version);
    expect((await k.audit(t.id)).slice(auditBefore)).toEqual([
      { kind: 'task.refused', actor: 'main', detail: { action: 'transition', to, code: 'illegal_transition', detail: res.body.detail } },
    ]);
  });
});

describe("a transition's own requirements", () => {
  it('needs a reason to block (422)', async () => {
    const t = await k.taskIn('DOING');
    const res = await k.move('developer', t, 'BLOCKED');
    expect(res.status).toBe(422);
    expect(res.body.issues[0].path).toEqual(['reason']);
  });

  it('needs an assigned group to reach READY (422), and a known one', async () => {
    const t = await k.taskIn('TRIAGED');
    const none = await k.move('main', t, 'READY');
    expect(none.status).toBe(422);
    expect(none.body.issues[0].path).toEqual(['assigned_group']);
    const unknown = await k.move('main', t, 'READY', { assigned_group: 'ghosts' });
    expect(unknown.status).toBe(422);
  });
});

describe('DONE requirements, one missing at a time', () => {
  /** A SECURITY task (Security gate, two DoD items, docs required) in APPROVAL with all but `skip` met. */
  async function almostDone(skip: 'gate' | 'dod' | 'docs' | 'nothing'): Promise<Seen> {
    let t = await k.taskIn('APPROVAL', { type: 'SECURITY', definition_of_done: ['fix', 'test'] });
    if (skip !== 'gate') t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' }));
    t = seen(
      await k.mutate('developer', 'PATCH', `/v1/tasks/${t.id}/dod`, t, {
        items: [
          { id: 1, done: true },
          { id: 2, done: skip !== 'dod' },
        ],
        docs_updated: skip !== 'docs',
      }),
    );
    return t;
  }

  it.each([
    ['gate', [{ requirement: 'gate', gate: 'Security', gate_status: 'pending' }]],
    ['dod', [{ requirement: 'definition_of_done', item_id: 2, text: 'test' }]],
    ['docs', [{ requirement: 'docs_updated', type: 'SECURITY' }]],
  ] as const)('refuses DONE when only the %s requirement is missing (409 done_requirements_unmet)', async (skip, missing) => {
    const t = await almostDone(skip);
    const res = await k.move('main', t, 'DONE');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'done_requirements_unmet', missing });
    expect((await k.get(t.id)).task.state).toBe('APPROVAL');
    expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.refused', actor: 'main', detail: { action: 'transition', to: 'DONE', code: 'done_requirements_unmet' } });
  });

  it('allows DONE once everything is met', async () => {
    const t = await almostDone('nothing');
    expect((await k.move('main', t, 'DONE')).status).toBe(200);
  });

  it('lists every missing requirement at once', async () => {
    const t = await k.taskIn('APPROVAL', { type: 'FEATURE', gate: 'Product', definition_of_done: ['a', 'b'] });
    const res = await k.move('main', t, 'DONE');
    expect(res.body.missing.map((m: { requirement: string }) => m.requirement)).toEqual(['gate', 'definition_of_done', 'definition_of_done', 'docs_updated']);
  });

  it('does not ask for docs on a BUG without a gate or checklist', async () => {
    const t = await k.taskIn('APPROVAL', { type: 'BUG' });
    expect((await k.move('main', t, 'DONE')).status).toBe(200);
  });
});

describe('optimistic locking', () => {
  it('answers 428 precondition_required without If-Match (or with *)', async () => {
    const t = await k.taskIn('INBOX');
    const missing = await k.move('main', t, 'TRIAGED', {}, null);
    expect(missing.status).toBe(428);
    expect(missing.body.code).toBe('precondition_required');
    expect((await k.move('main', t, 'TRIAGED', {}, '*')).status).toBe(428);
    expect((await broker.client('main').post(`/v1/tasks/${t.id}/gate`, { decision: 'approve' })).status).toBe(428);
    expect((await broker.client('main').post(`/v1/tasks/${t.id}/override`, { reason: 'r', risk_acceptance: 'r' })).status).toBe(428);
    expect((await broker.client('main').request('PATCH', `/v1/tasks/${t.id}/dod`, { json: { docs_updated: true } })).status).toBe(428);
  });

  it('answers 412 precondition_failed for a stale or weak tag, and accepts a list holding the current one', async () => {
    let t = await k.taskIn('INBOX');
    t = seen(await k.move('main', t, 'TRIAGED'));
    const stale = await k.move('main', t, 'READY', { assigned_group: 'developer' }, '"v1"');
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ code: 'precondition_failed', current_etag: t.etag });
    expect((await k.move('main', t, 'READY', { assigned_group: 'developer' }, `W/${t.etag}`)).status).toBe(412);
    expect((await k.move('main', t, 'READY', { assigned_group: 'developer' }, `"v1", ${t.etag}`)).status).toBe(200);
  });

  it('lets exactly one of several concurrent writers with the same tag win', async () => {
    const t = await k.taskIn('REVIEW');
    const auditBefore = (await k.audit(t.id)).length;
    const attempts = await Promise.all([
      k.move('developer', t, 'DOING'),
      k.move('main', t, 'APPROVAL'),
      k.move('main', t, 'BLOCKED', { reason: 'hold' }),
      k.mutate('developer', 'PATCH', `/v1/tasks/${t.id}/dod`, t, { docs_updated: true }),
    ]);
    const statuses = attempts.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 412, 412, 412]);
    const after = await k.get(t.id);
    expect(after.task.version).toBe(t.task.version + 1);
    expect((await k.audit(t.id))).toHaveLength(auditBefore + 1);
  });
});

describe('gate and checklist conflicts', () => {
  it('refuses a decision on a task without a gate, outside APPROVAL, or already decided (409 conflict)', async () => {
    const plain = await k.taskIn('APPROVAL', { type: 'BUG' });
    expect((await k.mutate('main', 'POST', `/v1/tasks/${plain.id}/gate`, plain, { decision: 'approve' })).body.code).toBe('conflict');
    expect((await k.mutate('main', 'POST', `/v1/tasks/${plain.id}/override`, plain, { reason: 'r', risk_acceptance: 'r' })).body.code).toBe('conflict');

    const early = await k.taskIn('DOING', { type: 'SECURITY' });
    const res = await k.mutate('security', 'POST', `/v1/tasks/${early.id}/gate`, early, { decision: 'approve' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', state: 'DOING' });

    let t = await k.taskIn('APPROVAL', { type: 'SECURITY' });
    t = seen(await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' }));
    const twice = await k.mutate('security', 'POST', `/v1/tasks/${t.id}/gate`, t, { decision: 'approve' });
    expect(twice.body).toMatchObject({ code: 'conflict', gate_status: 'approved' });
    const late = await k.mutate('main', 'POST', `/v1/tasks/${t.id}/override`, t, { reason: 'r', risk_acceptance: 'r' });
    expect(late.body).toMatchObject({ code: 'conflict', gate_status: 'approved' });
  });

  it('needs a reason and a risk acceptance to override (422)', async () => {
    const t = await k.taskIn('APPROVAL', { type: 'CLAIMS' });
    const res = await k.mutate('main', 'POST', `/v1/tasks/${t.id}/override`, t, { reason: 'ship it' });
    expect(res.status).toBe(422);
    expect(res.body.issues[0].path).toEqual(['risk_acceptance']);
  });

  it('refuses an unknown checklist item (422), an empty update (422), and edits after DONE (409)', async () => {
    const t = await k.taskIn('DOING', { definition_of_done: ['one'] });
    expect((await k.mutate('developer', 'PATCH', `/v1/tasks/${t.id}/dod`, t, { items: [{ id: 7, done: true }] })).status).toBe(422);
    expect((await k.mutate('developer', 'PATCH', `/v1/tasks/${t.id}/dod`, t, {})).status).toBe(422);
    const done = await k.taskIn('DONE');
    expect((await k.mutate('main', 'PATCH', `/v1/tasks/${done.id}/dod`, done, { docs_updated: true })).body.code).toBe('conflict');
  });

  it('answers 404 for an unknown dispatch', async () => {
    const res = await broker.client('developer').post('/v1/dispatches/01ARZ3NDEKTSV4RRFFQ69G5FAV/ack', {});
    expect(res.status).toBe(404);
  });
});

describe('afterwards', () => {
  it('the audit chain verifies, in-process and with `broker audit verify`', async () => {
    expect(await broker.verifyChain()).toMatchObject({ ok: true });
    expect(await auditVerifyCli(broker.dataDir)).toMatch(/^audit chain ok: \d+ rows verified/);
  });
});
