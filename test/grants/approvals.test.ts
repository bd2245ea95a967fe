import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { bearer, createAsMain, DAY_MS, makeApprover, signDecision, startGrantsBroker, submit, tokenFor, type TestApprover } from './helpers.js';

/** The two-man rule for L3 grants, with real Ed25519 keys and compact JWS from jose. */
describe('two-man rule', () => {
  let broker: TestBroker;
  let operator: string;
  let sec1: TestApprover;
  let sec2: TestApprover;
  let sre1: TestApprover;
  let olga: TestApprover;
  let mainApprover: TestApprover;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    operator = await tokenFor(broker, 'operator', 'olga');
    sec1 = await makeApprover(broker, 'sam', 'security');
    sec2 = await makeApprover(broker, 'sue', 'security');
    sre1 = await makeApprover(broker, 'raj', 'sre');
    olga = await makeApprover(broker, 'olga', 'sre');
    mainApprover = await makeApprover(broker, 'max', 'main');
  });
  afterAll(() => broker.stop());

  const l3 = (extra: Record<string, unknown> = {}) => createAsMain(broker, { group: 'main', level: 3, ttl_s: 3600, ...extra });
  const show = async (id: string) => (await bearer(broker, operator, 'GET', `/v1/grants/${id}`)).body;
  const view = (id: string) => broker.deps.grants.candidates('main', 'ops').find((v) => v.id === id);

  it('an L3 grant starts pending and two approvers of two groups activate it; expiry counts from activation', async () => {
    const g = await l3();
    expect(g.status).toBe('pending_approval');
    expect(g.approvals_required).toBe(2);
    expect(view(g.id)).toMatchObject({ status: 'pending_approval', approvals: 0, activatedAt: null });

    const first = await submit(broker, g.id, await signDecision(broker, sec1, g));
    expect(first.status).toBe(200);
    expect(first.body.outcome).toBe('recorded');
    expect(first.body.grant.status).toBe('pending_approval');
    expect(view(g.id)!.approvals).toBe(1);

    broker.clock.advance(30 * 60_000);
    const second = await submit(broker, g.id, await signDecision(broker, sre1, g));
    expect(second.body.outcome).toBe('activated');
    expect(second.body.grant.status).toBe('active');
    expect(second.body.grant.activated_at).toBe(new Date(broker.clock.now()).toISOString());
    expect(second.body.grant.expires_at).toBe(new Date(broker.clock.now() + 3_600_000).toISOString());
    expect(view(g.id)).toMatchObject({ status: 'active', approvals: 2, activatedAt: broker.clock.now(), expiresAt: broker.clock.now() + 3_600_000 });

    const timeline = (await show(g.id)).timeline.map((t: any) => [t.kind, t.actor]);
    expect(timeline).toEqual([
      ['grant.created', 'main'],
      ['grant.approval_recorded', 'approver:sam'],
      ['grant.approval_recorded', 'approver:raj'],
      ['grant.activated', 'system'],
    ]);
  });

  it('the same approver twice counts once: 409 approval_duplicate, still pending', async () => {
    const g = await l3();
    expect((await submit(broker, g.id, await signDecision(broker, sec1, g))).status).toBe(200);
    broker.clock.advance(1000);
    const again = await submit(broker, g.id, await signDecision(broker, sec1, g));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('approval_duplicate');
    expect((await show(g.id)).status).toBe('pending_approval');
    expect(view(g.id)!.approvals).toBe(1);
  });

  it('resubmitting the identical JWS is a no-op replay', async () => {
    const g = await l3();
    const jws = await signDecision(broker, sec1, g);
    expect((await submit(broker, g.id, jws)).body.outcome).toBe('recorded');
    const replay = await submit(broker, g.id, jws);
    expect(replay.status).toBe(200);
    expect(replay.body.outcome).toBe('replayed');
    expect(replay.body.grant.approvals).toHaveLength(1);
  });

  it('two approvers of the same group: the second is 403 approver_ineligible', async () => {
    const g = await l3();
    expect((await submit(broker, g.id, await signDecision(broker, sec1, g))).status).toBe(200);
    const same = await submit(broker, g.id, await signDecision(broker, sec2, g));
    expect(same.status).toBe(403);
    expect(same.body.code).toBe('approver_ineligible');
    expect((await show(g.id)).status).toBe('pending_approval');
  });

  it('the requester cannot approve: an operator approving their own request, or an approver of the requesting group', async () => {
    const byOlga = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'main', provider: 'ops', level: 3, reason: 'deploy' } });
    expect(byOlga.body.requested_by).toBe('operator:olga');
    const self = await submit(broker, byOlga.body.id, await signDecision(broker, olga, byOlga.body));
    expect(self.status).toBe(403);
    expect(self.body.code).toBe('approver_ineligible');

    const byMain = await l3();
    const fromMain = await submit(broker, byMain.id, await signDecision(broker, mainApprover, byMain));
    expect(fromMain.status).toBe(403);
    expect(fromMain.body.code).toBe('approver_ineligible');
    expect(view(byMain.id)!.approvals).toBe(0);
  });

  it("the grant's own group cannot approve it, whoever requested it; approvers of two other groups activate it", async () => {
    const byOperator = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'main', provider: 'ops', level: 3, reason: 'deploy for main' } });
    expect(byOperator.status).toBe(201);
    expect(byOperator.body.requested_by).toBe('operator:olga');
    const beneficiary = await submit(broker, byOperator.body.id, await signDecision(broker, mainApprover, byOperator.body));
    expect(beneficiary.status).toBe(403);
    expect(beneficiary.body.code).toBe('approver_ineligible');
    expect(beneficiary.body.detail).toContain('the grant is for main');
    expect(beneficiary.body.rule).toBe('beneficiary_group');
    expect(view(byOperator.body.id)!.approvals).toBe(0);
    const refused = (await show(byOperator.body.id)).timeline.filter((t: any) => t.kind === 'grant.approval_refused');
    expect(refused).toEqual([expect.objectContaining({ actor: 'approver:max', detail: expect.objectContaining({ code: 'approver_ineligible' }) })]);

    const byMain = await l3();
    const fromMain = await submit(broker, byMain.id, await signDecision(broker, mainApprover, byMain));
    expect(fromMain.status).toBe(403);
    expect(fromMain.body.code).toBe('approver_ineligible');
    expect(view(byMain.id)!.approvals).toBe(0);

    for (const g of [byOperator.body, byMain]) {
      expect((await submit(broker, g.id, await signDecision(broker, sec1, g))).body.outcome).toBe('recorded');
      const second = await submit(broker, g.id, await signDecision(broker, sre1, g));
      expect(second.body.outcome).toBe('activated');
      expect(second.body.grant.approvals.map((a: any) => a.approver_group)).toEqual(['security', 'sre']);
      expect(view(g.id)).toMatchObject({ status: 'active', approvals: 2 });
    }
  });

  it('a forged signature is 422 approval_invalid: a key other than the registered one, or a tampered payload', async () => {
    const g = await l3();
    const impostor = await makeApprover(broker, 'sam', 'security', false); // same kid, unregistered key
    const forged = await submit(broker, g.id, await signDecision(broker, impostor, g));
    expect(forged.status).toBe(422);
    expect(forged.body.code).toBe('approval_invalid');

    const [header, , signature] = (await signDecision(broker, sec1, g)).split('.');
    const payload = Buffer.from(JSON.stringify({ grant_id: g.id, grant_digest: g.digest, decision: 'approve', iat: 1, exp: 4102444800 })).toString('base64url');
    const tampered = await submit(broker, g.id, `${header}.${payload}.${signature}`);
    expect(tampered.body.code).toBe('approval_invalid');

    const unknown = await submit(broker, g.id, await signDecision(broker, { id: 'nobody', privateKey: sec1.privateKey }, g));
    expect(unknown.body.code).toBe('approval_invalid');
    const garbage = await submit(broker, g.id, 'not.a.jws');
    expect(garbage.body.code).toBe('approval_invalid');

    const refused = (await show(g.id)).timeline.filter((t: any) => t.kind === 'grant.approval_refused');
    expect(refused).toHaveLength(4);
    expect(view(g.id)!.approvals).toBe(0);
  });

  it('an expired approval, or one for another grant, is 422 approval_invalid', async () => {
    const g = await l3();
    const other = await l3({ reason: 'another' });
    const old = await signDecision(broker, sec1, g, 'approve', 60);
    broker.clock.advance(61_000 + broker.deps.config.clockSkewS * 1000);
    expect((await submit(broker, g.id, old)).body.code).toBe('approval_invalid');
    expect((await submit(broker, g.id, await signDecision(broker, sec1, other))).body.code).toBe('approval_invalid');
    expect((await submit(broker, g.id, await signDecision(broker, sec1, g, 'approve', 3 * DAY_MS / 1000))).body.code).toBe('approval_invalid');
  });

  it('changing the terms after one approval voids it; approvals of the old terms are refused', async () => {
    const g = await l3({ resources: ['acme/api'] });
    expect((await submit(broker, g.id, await signDecision(broker, sec1, g))).status).toBe(200);
    const signedEarlier = await signDecision(broker, sre1, g);

    const amended = await bearer(broker, operator, 'PATCH', `/v1/grants/${g.id}`, { json: { resources: ['acme/*'] } });
    expect(amended.status, JSON.stringify(amended.body)).toBe(200);
    expect(amended.body.digest).not.toBe(g.digest);
    expect(amended.body.approvals).toEqual([expect.objectContaining({ approver_id: 'sam', counts: false })]);
    expect(view(g.id)!.approvals).toBe(0);

    const stale = await submit(broker, g.id, signedEarlier);
    expect(stale.status).toBe(422);
    expect(stale.body.code).toBe('approval_invalid');
    expect(stale.body.current_digest).toBe(amended.body.digest);

    const terms = { id: g.id, digest: amended.body.digest };
    expect((await submit(broker, g.id, await signDecision(broker, sre1, terms))).body.outcome).toBe('recorded');
    const done = await submit(broker, g.id, await signDecision(broker, sec1, terms));
    expect(done.body.outcome).toBe('activated');
    expect(done.body.grant.resources).toEqual(['acme/*']);
  });

  it('whoever changed the terms cannot approve them', async () => {
    const g = await l3();
    const amended = await bearer(broker, operator, 'PATCH', `/v1/grants/${g.id}`, { json: { reason: 'widened by olga' } });
    const res = await submit(broker, g.id, await signDecision(broker, olga, amended.body));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('approver_ineligible');
  });

  it('one signed denial rejects the grant; nothing more can be approved', async () => {
    const g = await l3();
    expect((await submit(broker, g.id, await signDecision(broker, sec1, g))).status).toBe(200);
    const denied = await submit(broker, g.id, await signDecision(broker, sre1, g, 'deny'));
    expect(denied.body.outcome).toBe('rejected');
    expect(denied.body.grant.status).toBe('rejected');
    expect(view(g.id)).toBeUndefined();
    const late = await submit(broker, g.id, await signDecision(broker, sec2, g));
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'grant_not_pending', status: 409, grant_status: 'rejected' });
    expect((await bearer(broker, operator, 'PATCH', `/v1/grants/${g.id}`, { json: { reason: 'try again' } })).body.code).toBe('grant_not_pending');
  });

  it('a pending grant expires after the pending TTL (24 h by default), to the millisecond', async () => {
    const g = await l3();
    const deadline = Date.parse(g.pending_expires_at);
    expect(deadline).toBe(broker.clock.now() + broker.deps.config.pendingGrantTtlS * 1000);
    expect(broker.deps.config.pendingGrantTtlS).toBe(24 * 3600);
    broker.clock.set(deadline - 1);
    expect(view(g.id)).toBeDefined();
    expect((await show(g.id)).status).toBe('pending_approval');
    broker.clock.set(deadline);
    expect(view(g.id)).toBeUndefined();
    expect((await show(g.id)).status).toBe('expired');
    const late = await submit(broker, g.id, await signDecision(broker, sec1, g));
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('grant_not_pending');
  });

  it('approvals are carried by operators or main only, and accept JSON {jws} too', async () => {
    const g = await l3();
    const jws = await signDecision(broker, sec1, g);
    const dev = await broker.client('developer').request('POST', `/v1/grants/${g.id}/approvals`, { rawBody: jws, headers: { 'content-type': 'application/jose' } });
    expect(dev.status).toBe(403);
    const auditor = await tokenFor(broker, 'auditor', 'audrey');
    expect((await bearer(broker, auditor, 'POST', `/v1/grants/${g.id}/approvals`, { json: { jws } })).status).toBe(403);
    const viaOperator = await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/approvals`, { json: { jws } });
    expect(viaOperator.status).toBe(200);
    expect(viaOperator.body.outcome).toBe('recorded');
  });
});

describe('approvers from policies/approvers.json', () => {
  let broker: TestBroker;
  let policies: string;
  beforeAll(async () => {
    policies = tempDir('broker-policies-');
    fs.copyFileSync(path.join(REPO_ROOT, 'policies/groups.json'), path.join(policies, 'groups.json'));
    broker = await startGrantsBroker({ env: { BROKER_POLICIES_DIR: policies, BROKER_PENDING_GRANT_TTL_S: '3600' } });
  });
  afterAll(() => broker.stop());

  it('approve like CLI-added ones, and the pending TTL is configurable', async () => {
    const a = await makeApprover(broker, 'fay', 'security', false);
    const b = await makeApprover(broker, 'gus', 'sre', false);
    fs.writeFileSync(
      path.join(policies, 'approvers.json'),
      JSON.stringify({ approvers: [a, b].map((x) => ({ id: x.id, group: x.group, public_jwk: x.publicJwk })) }),
    );
    const g = await createAsMain(broker, { group: 'main', level: 3 });
    expect(Date.parse(g.pending_expires_at) - Date.parse(g.created_at)).toBe(3_600_000);
    expect((await submit(broker, g.id, await signDecision(broker, a, g))).body.outcome).toBe('recorded');
    expect((await submit(broker, g.id, await signDecision(broker, b, g))).body.outcome).toBe('activated');
  });

  it('a malformed approvers.json, edited after start-up, refuses approvals with 503 and records nothing', async () => {
    const a = await makeApprover(broker, 'hal', 'security', false);
    const file = path.join(policies, 'approvers.json');
    fs.writeFileSync(file, JSON.stringify({ approvers: [{ id: a.id, group: a.group, public_jwk: a.publicJwk }] }));
    const g = await createAsMain(broker, { group: 'main', level: 3 });
    const jws = await signDecision(broker, a, g);
    fs.writeFileSync(file, '{"approvers": [');
    const refused = await submit(broker, g.id, jws);
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('service_unavailable');
    expect(refused.body.detail).toContain('approvers.json');
    expect(broker.deps.grants.candidates('main', 'ops').find((v) => v.id === g.id)).toMatchObject({ status: 'pending_approval', approvals: 0 });
    fs.writeFileSync(file, JSON.stringify({ approvers: [{ id: a.id, group: a.group, public_jwk: a.publicJwk }] }));
    expect((await submit(broker, g.id, jws)).body.outcome).toBe('recorded');
  });
});

describe('broker serve with a malformed approvers.json', () => {
  it('does not start, and says which file and field are wrong', async () => {
    const policies = tempDir('broker-policies-');
    fs.copyFileSync(path.join(REPO_ROOT, 'policies/groups.json'), path.join(policies, 'groups.json'));
    fs.writeFileSync(path.join(policies, 'approvers.json'), JSON.stringify({ approvers: [{ id: 'x', group: 'security', public_jwk: { kty: 'RSA' } }] }));
    const run = await runCli(['serve'], { BROKER_DATA_DIR: tempDir(), BROKER_POLICIES_DIR: policies, BROKER_PORT: '0' });
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).toMatch(/approvers\.json: approvers\.0\.public_jwk/);
  });
});
