import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** `PATCH /v1/tasks/{id}` as `group` with `If-Match: t.etag`. */
const patch = (group: string, t: Pick<Seen, 'id' | 'etag'>, json: unknown) => k.mutate(group, 'PATCH', `/v1/tasks/${t.id}`, t, json);

const digest = (text: string) => ({ length: text.length, sha256: createHash('sha256').update(text, 'utf8').digest('hex') });

describe('PATCH /v1/tasks/{id}: edits', () => {
  it('lets main change priority and title: 200, new ETag, version + 1, one task.updated row with exactly those changes', async () => {
    const t = await k.taskIn('TRIAGED', { title: 'Fix the login', priority: 'P2', description: 'as reported' });
    const auditBefore = (await k.audit(t.id)).length;
    broker.clock.advance(5_000);
    const res = await patch('main', t, { priority: 'P0', title: '  Fix the login NOW  ' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"v${t.task.version + 1}"`);
    expect(res.body).toMatchObject({
      id: t.id,
      title: 'Fix the login NOW',
      priority: 'P0',
      description: 'as reported',
      type: 'BUG',
      state: 'TRIAGED',
      gate: 'none',
      version: t.task.version + 1,
    });
    expect(Date.parse(res.body.updated_at)).toBe(Date.parse(t.task.updated_at) + 5_000);
    expect(res.body.created_at).toBe(t.task.created_at);

    const rows = (await k.audit(t.id)).slice(auditBefore);
    expect(rows).toEqual([
      {
        kind: 'task.updated',
        actor: 'main',
        detail: { changes: { title: { from: 'Fix the login', to: 'Fix the login NOW' }, priority: { from: 'P2', to: 'P0' } }, version: t.task.version + 1 },
      },
    ]);
    expect(await k.get(t.id)).toMatchObject({ etag: res.headers.get('etag'), task: { priority: 'P0', title: 'Fix the login NOW' } });
  });

  it('records only the fields that changed, and a description as length and sha-256, never the text', async () => {
    const t = await k.taskIn('INBOX', { priority: 'P1' });
    const text = 'Reproduce with the staging tenant; the session cookie is dropped after the redirect.';
    const res = await patch('main', t, { priority: 'P1', description: text });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ priority: 'P1', description: text, version: t.task.version + 1 });
    const last = (await k.audit(t.id)).at(-1)!;
    expect(last).toEqual({ kind: 'task.updated', actor: 'main', detail: { changes: { description: { from: digest(''), to: digest(text) } }, version: t.task.version + 1 } });
    expect(JSON.stringify(last.detail)).not.toContain('staging tenant');
  });

  it('lets the assigned group edit the description', async () => {
    const t = await k.taskIn('DOING', { description: 'old notes' });
    const res = await patch('developer', t, { description: 'new notes from the developer' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"v${t.task.version + 1}"`);
    expect(res.body).toMatchObject({ description: 'new notes from the developer', version: t.task.version + 1 });
    expect((await k.audit(t.id)).at(-1)).toEqual({
      kind: 'task.updated',
      actor: 'developer',
      detail: { changes: { description: { from: digest('old notes'), to: digest('new notes from the developer') } }, version: t.task.version + 1 },
    });
  });

  it('answers a PATCH that changes nothing with 200 and the task as it is: same version and ETag, no audit row', async () => {
    const t = await k.taskIn('READY', { title: 'Same', priority: 'P3', description: 'same text' });
    const auditBefore = (await k.audit(t.id)).length;
    broker.clock.advance(1_000);
    const res = await patch('main', t, { title: 'Same', priority: 'P3', description: 'same text' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(t.etag);
    expect(res.body).toEqual(t.task);
    const byAssignee = await patch('developer', t, { description: 'same text' });
    expect(byAssignee.status).toBe(200);
    expect(byAssignee.body.version).toBe(t.task.version);
    expect((await k.audit(t.id))).toHaveLength(auditBefore);
    expect((await k.get(t.id)).task).toEqual(t.task);
  });

  it('answers 404 for an unknown task', async () => {
    for (const id of [NO_SUCH_TASK, 'not-a-ulid']) {
      const res = await patch('main', { id, etag: '"v1"' }, { priority: 'P0' });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
    }
  });
});

describe('PATCH /v1/tasks/{id}: who may edit', () => {
  it('refuses the assigned group a priority or title change (403 forbidden, recorded as task.refused)', async () => {
    const t = await k.taskIn('DOING', { priority: 'P2' });
    for (const body of [{ priority: 'P0' }, { title: 'Mine now' }, { description: 'ok', priority: 'P2' }]) {
      const res = await patch('developer', t, body);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      const fields = Object.keys(body)
        .filter((f) => f !== 'description')
        .sort();
      expect(res.body.fields).toEqual(fields);
      expect((await k.audit(t.id)).at(-1)).toMatchObject({
        kind: 'task.refused',
        actor: 'developer',
        detail: { action: 'update', fields: Object.keys(body).sort(), code: 'forbidden' },
      });
    }
    expect((await k.get(t.id)).task).toEqual(t.task);
  });

  it('refuses any other group, even for the description (403 forbidden, task.refused)', async () => {
    const t = await k.taskIn('DOING');
    const res = await patch('security', t, { description: 'drive-by edit' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
    expect((await k.audit(t.id)).at(-1)).toMatchObject({ kind: 'task.refused', actor: 'security', detail: { action: 'update', fields: ['description'], code: 'forbidden' } });
    const unassigned = await k.taskIn('INBOX');
    expect((await patch('developer', unassigned, { description: 'x' })).status).toBe(403);
    expect((await k.get(t.id)).task).toEqual(t.task);
  });
});

describe('PATCH /v1/tasks/{id}: optimistic locking', () => {
  it('answers 428 precondition_required without If-Match (or with *)', async () => {
    const t = await k.taskIn('INBOX');
    const missing = await broker.client('main').request('PATCH', `/v1/tasks/${t.id}`, { json: { priority: 'P0' } });
    expect(missing.status).toBe(428);
    expect(missing.body.code).toBe('precondition_required');
    expect((await patch('main', { id: t.id, etag: '*' }, { priority: 'P0' })).status).toBe(428);
  });

  it('answers 412 precondition_failed with current_etag for a stale tag', async () => {
    const t = await k.taskIn('TRIAGED');
    const res = await patch('main', { id: t.id, etag: '"v1"' }, { priority: 'P0' });
    expect(res.status).toBe(412);
    expect(res.body).toMatchObject({ code: 'precondition_failed', current_etag: t.etag });
    expect((await k.get(t.id)).task.priority).toBe('P2');
  });

  it('lets exactly one of two concurrent PATCHes with the same If-Match win', async () => {
    const t = await k.taskIn('INBOX');
    const auditBefore = (await k.audit(t.id)).length;
    const attempts = await Promise.all([patch('main', t, { priority: 'P0' }), patch('main', t, { priority: 'P1' })]);
    expect(attempts.map((r) => r.status).sort()).toEqual([200, 412]);
    const loser = attempts.find((r) => r.status === 412)!;
    expect(loser.body).toMatchObject({ code: 'precondition_failed' });
    const winner = attempts.find((r) => r.status === 200)!;
    const after = await k.get(t.id);
    expect(after.task.version).toBe(t.task.version + 1);
    expect(after.task.priority).toBe(winner.body.priority);
    expect((await k.audit(t.id))).toHaveLength(auditBefore + 1);
  });
});

describe('PATCH /v1/tasks/{id}: refused bodies and states', () => {
  it('refuses an empty body with 422 validation_failed', async () => {
    const t = await k.taskIn('INBOX');
    const res = await patch('main', t, {});
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.detail).toContain('at least one of title, description, priority');
  });

  it.each(['type', 'gate'])('refuses %s with 422: it is fixed at creation', async (field) => {
    const t = await k.taskIn('INBOX');
    const res = await patch('main', t, { [field]: field === 'type' ? 'SECURITY' : 'Security', priority: 'P0' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.issues).toEqual([expect.objectContaining({ path: [field], message: expect.stringContaining(`a task's ${field} is fixed at creation`) })]);
    expect(res.body.detail).toContain('create a new task instead');
    expect((await k.get(t.id)).task).toEqual(t.task);
  });

  it('refuses unknown members and values create would refuse (422)', async () => {
    const t = await k.taskIn('INBOX');
    const unknown = await patch('main', t, { priority: 'P0', state: 'DONE' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe('validation_failed');
    expect(unknown.body.issues).toEqual([expect.objectContaining({ code: 'unrecognized_keys' })]);
    for (const body of [{ title: '   ' }, { title: 'x'.repeat(201) }, { description: 'x'.repeat(10_001) }, { priority: 'P4' }, { priority: null }]) {
      const res = await patch('main', t, body);
      expect(res.status).toBe(422);
      expect(res.body.issues[0].path).toEqual(Object.keys(body));
    }
    expect((await k.audit(t.id)).map((a) => a.kind)).toEqual(['task.created']);
  });

  it('refuses an edit of a DONE task with 409 conflict', async () => {
    const done = await k.taskIn('DONE');
    const auditBefore = (await k.audit(done.id)).length;
    const res = await patch('main', done, { priority: 'P0' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', state: 'DONE' });
    expect((await k.audit(done.id))).toHaveLength(auditBefore);
  });
});

describe('afterwards', () => {
  it('the audit chain verifies, in-process and with `broker audit verify`', async () => {
    expect(await broker.verifyChain()).toMatchObject({ ok: true });
    expect(await auditVerifyCli(broker.dataDir)).toMatch(/^audit chain ok: \d+ rows verified/);
  });
});
