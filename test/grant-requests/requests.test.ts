/**
 * Access requests over a real server: an agent group asks, operators list and decide, the grant
 * is made by the grants service under its own rules, and the agent sees the outcome on its request
 * and in its capabilities. Requests never grant by themselves, never above the ceiling, and expire.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expireGrantRequests } from '../../src/modules/grant-requests/service.js';
import type { TestBroker } from '../helpers/harness.js';
import { bearer, startGrantsBroker, tokenFor } from '../grants/helpers.js';

const TTL_S = 3600;
const ask = (terms: Record<string, unknown> = {}) => ({
  provider: 'ops',
  level: 2,
  allowed_actions: ['ops.write'],
  resources: ['acme/*'],
  ttl_s: 7200,
  justification: 'deploy the fix for #42',
  ...terms,
});

describe('access requests over a real server', () => {
  let broker: TestBroker;
  let operator: string;
  let auditor: string;
  const count = (table: string) => (broker.deps.db.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  const kindsOf = (subject: string) => (broker.deps.db.sqlite.prepare('SELECT kind FROM gov_activities WHERE subject = ? ORDER BY seq').all(subject) as { kind: string }[]).map((r) => r.kind);
  const capability = async (group: string, action: string) =>
    ((await broker.client(group).get('/v1/ext/capabilities')).body.actions as { action: string; allowed: boolean; code: string | null; grant_id: string | null }[]).find((a) => a.action === action)!;

  beforeAll(async () => {
    broker = await startGrantsBroker({ env: { BROKER_GRANT_REQUEST_TTL_S: String(TTL_S) } });
    operator = await tokenFor(broker, 'operator', 'olga');
    auditor = await tokenFor(broker, 'auditor', 'audrey');
  });
  afterAll(() => broker.stop());

  it('round trip (L2): the agent asks, operators list, one approves, the grant is active and the agent can call', async () => {
    const asked = await broker.client('developer').post('/v1/grant-requests', ask());
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    const id = asked.body.id as string;
    expect(id).toMatch(/^grq_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(asked.headers.get('location')).toBe(`/v1/grant-requests/${id}`);
    expect(asked.body).toMatchObject({ group: 'developer', provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/*'], ttl_s: 7200, status: 'pending', grant_id: null });
    expect(asked.body.pending_expires_at).toBe(new Date(broker.clock.now() + TTL_S * 1000).toISOString());
    // Asking granted nothing.
    expect(await capability('developer', 'ops.write')).toMatchObject({ allowed: false, code: 'no_capability' });

    const listed = await bearer(broker, auditor, 'GET', '/v1/grant-requests?status=pending&group=developer');
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((r: { id: string }) => r.id)).toContain(id);

    const approved = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/approve`, { json: { reason: 'fine for #42' } });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const grant = approved.body.grant;
    expect(approved.body.request).toMatchObject({ id, status: 'approved', decided_by: 'operator:olga', decision_reason: 'fine for #42', grant_id: grant.id });
    expect(grant).toMatchObject({ group: 'developer', provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/*'], ttl_s: 7200, status: 'active', requested_by: 'operator:olga' });
    expect(grant.reason).toBe(`grant request ${id}: deploy the fix for #42`);
    expect(grant.expires_at).toBe(new Date(broker.clock.now() + 7200 * 1000).toISOString());

    expect((await bearer(broker, operator, 'GET', `/v1/grants/${grant.id}`)).body.status).toBe('active');
    expect(await capability('developer', 'ops.write')).toMatchObject({ allowed: true, grant_id: grant.id });
    const seen = await broker.client('developer').get(`/v1/grant-requests/${id}`);
    expect(seen.body).toMatchObject({ status: 'approved', grant_id: grant.id, grant_status: 'active' });
    expect(seen.body.timeline.map((t: { kind: string }) => t.kind)).toEqual(['grant_request.created', 'grant_request.approved', 'grant_request.granted']);
    expect(kindsOf(grant.id)).toEqual(['grant.created']);

    // Approving again answers the same request and grant; no second grant.
    const grants = count('grants');
    const again = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} });
    expect([again.status, again.body.grant.id]).toEqual([200, grant.id]);
    expect(count('grants')).toBe(grants);
  });

  it('an L3 request approved by an operator makes a grant pending its two approvals; main never decides its own request', async () => {
    const asked = await broker.client('main').post('/v1/grant-requests', ask({ level: 'L3', allowed_actions: ['ops.deploy'], ttl_s: 3600 }));
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    const id = asked.body.id as string;

    for (const path of [`/v1/grant-requests/${id}/approve`, `/v1/grant-requests/${id}/deny`]) {
      const self = await broker.client('main').post(path, { reason: 'mine' });
      expect(self.status).toBe(403);
      expect(self.body).toMatchObject({ code: 'separation_of_powers', rule: 'requester' });
    }
    expect(kindsOf(id)).toEqual(['grant_request.created', 'grant_request.decision_refused', 'grant_request.decision_refused']);
    expect((await broker.client('main').get(`/v1/grant-requests/${id}`)).body.status).toBe('pending');

    const approved = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.grant).toMatchObject({ group: 'main', level: 3, status: 'pending_approval', approvals_required: 2, approvals: [] });
    expect(await capability('main', 'ops.deploy')).toMatchObject({ allowed: false, code: 'approval_pending' });
    expect((await broker.client('main').get(`/v1/grant-requests/${id}`)).body).toMatchObject({ status: 'approved', grant_status: 'pending_approval' });
  });

  it("main decides another group's request; other agent groups and auditors decide nothing", async () => {
    const id = (await broker.client('security').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'] }))).body.id as string;
    for (const group of ['developer', 'security']) {
      const res = await broker.client(group).post(`/v1/grant-requests/${id}/approve`, {});
      expect([res.status, res.body.code]).toEqual([403, 'forbidden']);
    }
    expect((await bearer(broker, auditor, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} })).status).toBe(403);
    const byMain = await broker.client('main').post(`/v1/grant-requests/${id}/approve`, {});
    expect(byMain.status, JSON.stringify(byMain.body)).toBe(200);
    expect(byMain.body.grant).toMatchObject({ group: 'security', level: 1, status: 'active', requested_by: 'main' });
  });

  it('deny with a reason: the agent reads it, nothing is granted, and the request cannot be approved after', async () => {
    const id = (await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'just in case' }))).body.id as string;
    const grants = count('grants');
    const noReason = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/deny`, { json: {} });
    expect([noReason.status, noReason.body.code]).toEqual([422, 'validation_failed']);
    const denied = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/deny`, { json: { reason: 'no task needs it' } });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ status: 'denied', decided_by: 'operator:olga', decision_reason: 'no task needs it', grant_id: null });
    expect((await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/deny`, { json: { reason: 'again' } })).body.decision_reason).toBe('no task needs it');
    const late = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'grant_request_not_pending', request_status: 'denied' });
    expect(count('grants')).toBe(grants);
    expect((await broker.client('developer').get(`/v1/grant-requests/${id}`)).body).toMatchObject({ status: 'denied', decision_reason: 'no task needs it', grant_status: null });
    expect(kindsOf(id)).toEqual(['grant_request.created', 'grant_request.denied']);
  });

  it('above the ceiling, too long, an action above the level, a secret in the justification, or a token: refused, nothing stored', async () => {
    const before = count('grant_requests');
    const audit = count('gov_activities');
    const cases: [string, Record<string, unknown>, number, string][] = [
      ['security', { level: 2 }, 422, 'level_above_ceiling'],
      ['developer', { level: 3, allowed_actions: ['ops.deploy'] }, 422, 'level_above_ceiling'],
      ['developer', { ttl_s: 7 * 24 * 3600 + 1 }, 422, 'expiry_too_long'],
      ['security', { level: 1, ttl_s: 7 * 24 * 3600 + 1, allowed_actions: ['ops.read'] }, 422, 'expiry_too_long'],
      ['developer', { level: 1 }, 422, 'validation_failed'],
      ['developer', { justification: `use ghp_${'a'.repeat(36)} please` }, 422, 'secret_in_input'],
      ['developer', { provider: 'nope' }, 422, 'validation_failed'],
      ['developer', { resources: undefined }, 422, 'validation_failed'],
    ];
    for (const [group, terms, status, code] of cases) {
      const res = await broker.client(group).post('/v1/grant-requests', ask(terms));
      expect([res.status, res.body.code], JSON.stringify(terms)).toEqual([status, code]);
    }
    const token = await bearer(broker, operator, 'POST', '/v1/grant-requests', { json: ask() });
    expect([token.status, token.body.code]).toEqual([403, 'forbidden']);
    expect(count('grant_requests')).toBe(before);
    expect(count('gov_activities')).toBe(audit);
  });

  it('is idempotent on Idempotency-Key: the same body answers the same request, another body is refused', async () => {
    const key = randomUUID();
    const first = await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'retry me' }), { idempotencyKey: key });
    expect(first.status).toBe(201);
    const before = count('grant_requests');
    const retry = await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'retry me' }), { idempotencyKey: key });
    expect([retry.status, retry.body.id, retry.headers.get('idempotent-replayed')]).toEqual([201, first.body.id, 'true']);
    const other = await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'something else' }), { idempotencyKey: key });
    expect([other.status, other.body.code]).toEqual([422, 'idempotency_key_reused']);
    // Keys are the group's own: another group's same key is a new request.
    const security = await broker.client('security').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'] }), { idempotencyKey: key });
    expect(security.status).toBe(201);
    expect(count('grant_requests')).toBe(before + 1);
    expect(kindsOf(first.body.id)).toEqual(['grant_request.created']);
  });

  it('a group reads only its own requests; operators and auditors read all', async () => {
    const id = (await broker.client('main').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'] }))).body.id as string;
    expect((await broker.client('main').get(`/v1/grant-requests/${id}`)).status).toBe(200);
    expect((await broker.client('developer').get(`/v1/grant-requests/${id}`)).status).toBe(404);
    expect((await bearer(broker, auditor, 'GET', `/v1/grant-requests/${id}`)).body.id).toBe(id);
    expect((await broker.client('developer').get('/v1/grant-requests')).status).toBe(403);
  });

  it('expires when nobody decides: reads expired from the deadline, cannot be approved, and the sweep records it once', async () => {
    const id = (await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'forgotten' }))).body.id as string;
    broker.clock.advance(TTL_S * 1000 - 1);
    expect((await broker.client('developer').get(`/v1/grant-requests/${id}`)).body.status).toBe('pending');
    broker.clock.advance(1);
    expect((await broker.client('developer').get(`/v1/grant-requests/${id}`)).body.status).toBe('expired');
    const expired = await bearer(broker, operator, 'GET', '/v1/grant-requests?status=expired');
    expect(expired.body.data.map((r: { id: string }) => r.id)).toContain(id);
    expect((await bearer(broker, operator, 'GET', '/v1/grant-requests?status=pending')).body.data.map((r: { id: string }) => r.id)).not.toContain(id);
    const late = await bearer(broker, operator, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} });
    expect(late.body).toMatchObject({ code: 'grant_request_not_pending', request_status: 'expired' });

    expect(await expireGrantRequests(broker.deps)).toBeGreaterThanOrEqual(1);
    expect(await expireGrantRequests(broker.deps)).toBe(0);
    expect(kindsOf(id)).toEqual(['grant_request.created', 'grant_request.expired']);
    expect((broker.deps.db.sqlite.prepare('SELECT status FROM grant_requests WHERE id = ?').get(id) as { status: string }).status).toBe('expired');
  });

  it('a renewal makes a new grant with the same terms and the new lifetime; only of an active grant of the group', async () => {
    const first = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 2, allowed_actions: ['ops.write'], denied_actions: ['ops.read'], resources: ['acme/api'], ttl_s: 600, reason: 'short' } });
    const asked = await broker.client('developer').post('/v1/grant-requests', { renews: first.body.id, ttl_s: 86400, justification: 'still on #42' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body).toMatchObject({ renews: first.body.id, provider: 'ops', level: 2, allowed_actions: ['ops.write'], denied_actions: ['ops.read'], resources: ['acme/api'], ttl_s: 86400 });
    const { grant } = (await bearer(broker, operator, 'POST', `/v1/grant-requests/${asked.body.id}/approve`, { json: {} })).body;
    expect(grant.id).not.toBe(first.body.id);
    expect(grant).toMatchObject({ status: 'active', level: 2, allowed_actions: ['ops.write'], denied_actions: ['ops.read'], resources: ['acme/api'], ttl_s: 86400 });

    const mixed = await broker.client('developer').post('/v1/grant-requests', { renews: first.body.id, ttl_s: 60, justification: 'x', level: 1 });
    expect([mixed.status, mixed.body.code]).toEqual([422, 'validation_failed']);
    const notMine = await broker.client('security').post('/v1/grant-requests', { renews: first.body.id, ttl_s: 60, justification: 'x' });
    expect([notMine.status, notMine.body.code]).toEqual([422, 'validation_failed']);

    // A renewal whose grant is revoked before the decision is refused and stays pending.
    const pending = (await broker.client('developer').post('/v1/grant-requests', { renews: grant.id, ttl_s: 3600, justification: 'more' })).body;
    await bearer(broker, operator, 'POST', `/v1/grants/${grant.id}/revoke`, { json: { reason: 'done' } });
    const refused = await bearer(broker, operator, 'POST', `/v1/grant-requests/${pending.id}/approve`, { json: {} });
    expect([refused.status, refused.body.code]).toEqual([409, 'conflict']);
    expect((await broker.client('developer').get(`/v1/grant-requests/${pending.id}`)).body).toMatchObject({ status: 'pending', decided_by: null });
    expect(kindsOf(pending.id)).toEqual(['grant_request.created']);
    const revoked = await broker.client('developer').post('/v1/grant-requests', { renews: grant.id, ttl_s: 3600, justification: 'again' });
    expect([revoked.status, revoked.body.code]).toEqual([409, 'conflict']);
  });

  it('an approval interrupted after its claim is finished by approving again, as its first approver', async () => {
    const id = (await broker.client('developer').post('/v1/grant-requests', ask({ justification: 'interrupted' }))).body.id as string;
    // The claim step of an approval by operator:olga, committed alone (as if the process died after it).
    await broker.deps.stores.grantRequests.change(id, (row, now) => ({ write: { status: 'approved', decidedBy: 'operator:olga', decidedAt: now, updatedAt: now }, result: row }));
    const other = await tokenFor(broker, 'operator', 'otto');
    const finished = await bearer(broker, other, 'POST', `/v1/grant-requests/${id}/approve`, { json: {} });
    expect(finished.status, JSON.stringify(finished.body)).toBe(200);
    expect(finished.body.request).toMatchObject({ status: 'approved', decided_by: 'operator:olga', grant_id: finished.body.grant.id });
    expect(finished.body.grant).toMatchObject({ status: 'active', requested_by: 'operator:olga' });
  });

  it('at most 20 pending requests per group (429 backpressure), counted again once some are decided', async () => {
    const mine = (await bearer(broker, operator, 'GET', '/v1/grant-requests?status=pending&group=security&limit=500')).body.data.length as number;
    for (let i = mine; i < 20; i++) expect((await broker.client('security').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'], justification: `n${i}` }))).status).toBe(201);
    const over = await broker.client('security').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'], justification: 'one more' }));
    expect([over.status, over.body.code]).toEqual([429, 'backpressure']);
    const first = (await bearer(broker, operator, 'GET', '/v1/grant-requests?status=pending&group=security&limit=1')).body;
    expect(first.has_more).toBe(true);
    await bearer(broker, operator, 'POST', `/v1/grant-requests/${first.data[0].id}/deny`, { json: { reason: 'too many' } });
    expect((await broker.client('security').post('/v1/grant-requests', ask({ level: 1, allowed_actions: ['ops.read'], justification: 'now' }))).status).toBe(201);
    // The cursor pages on.
    const next = await bearer(broker, operator, 'GET', `/v1/grant-requests?status=pending&group=security&limit=1&cursor=${first.next_cursor}`);
    expect(next.body.data[0].id > first.data[0].id).toBe(true);
  });
});
