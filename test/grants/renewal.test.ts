/**
 * Grant renewal through a running broker: an L2 grant renewed by an operator works past its old
 * expiry (and the renewal is on its timeline, in the API and the console); an L3 renewal keeps the
 * old expiry until two fresh approvals over the new terms, signed also with `broker approve`; an
 * access request with `renewal_of` renews in place; the refusals (revoked, expired, beyond 7 days).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { addApprover, generateApproverKey } from '../../src/modules/grants/approvers.js';
import { reviewGrantFile } from '../../src/modules/grants/review.js';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { call, taskIn } from '../calls/helpers.js';
import { bearer, makeApprover, signDecision, startGrantsBroker, submit, tokenFor, type TestApprover } from './helpers.js';

const HOUR = 3600 * 1000;
let broker: TestBroker;
let operator: string;
let sec: TestApprover;
let sre: TestApprover;

beforeAll(async () => {
  broker = await startGrantsBroker();
  operator = await tokenFor(broker, 'operator', 'olga');
  sec = await makeApprover(broker, 'sec-1', 'security');
  sre = await makeApprover(broker, 'sre-1', 'sre');
});
afterAll(async () => {
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
});

const renew = (id: string, body: Record<string, unknown>, key?: string) => bearer(broker, operator, 'POST', `/v1/grants/${id}/renew`, { json: body, ...(key ? { idempotencyKey: key } : {}) });
const show = async (id: string) => (await bearer(broker, operator, 'GET', `/v1/grants/${id}`)).body;
const iso = (ms: number) => new Date(ms).toISOString();

describe('renewal of an L1 or L2 grant', () => {
  it('extends the expiry at once: audited on the timeline and in the console, and a call after the old expiry works', async () => {
    const t0 = broker.clock.now();
    const g = (await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 2, ttl_s: 3600, reason: 'fix the build' } })).body;
    expect(g.expires_at).toBe(iso(t0 + HOUR));
    const res = await renew(g.id, { ttl_s: 3 * 3600, reason: 'the fix takes longer' }, 'renew-1');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'renewed', renewal: { status: 'applied', previous_expires_at: iso(t0 + HOUR), expires_at: iso(t0 + 3 * HOUR) }, grant: { expires_at: iso(t0 + 3 * HOUR) } });
    // Idempotency-Key: the same key and body answer the same renewal; another body is refused.
    const again = await renew(g.id, { ttl_s: 3 * 3600, reason: 'the fix takes longer' }, 'renew-1');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.renewal.id).toBe(res.body.renewal.id);
    expect((await renew(g.id, { ttl_s: 4 * 3600, reason: 'other' }, 'renew-1')).body.code).toBe('idempotency_key_reused');

    const timeline = (await show(g.id)).timeline;
    expect(timeline.find((e: any) => e.kind === 'grant.renewed')).toMatchObject({
      actor: 'operator:olga',
      detail: { previous_expires_at: iso(t0 + HOUR), expires_at: iso(t0 + 3 * HOUR), reason: 'the fix takes longer', renewal_id: res.body.renewal.id },
    });
    const page = await fetch(new URL(`/console/grants/${g.id}`, broker.url), { headers: { cookie: `console_session=${operator}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`<strong>grant.renewed</strong> by operator:olga (reason: the fix takes longer; previous_expires_at: ${iso(t0 + HOUR)}; expires_at: ${iso(t0 + 3 * HOUR)})`);

    const task = await taskIn(broker, 'DOING', 'developer');
    broker.clock.advance(2 * HOUR);
    const after = await call(broker, 'developer', { action: 'ops.write', task_id: task });
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body.receipt.grant_id).toBe(g.id);
  });

  it('refuses beyond 7 days from now (422), and a revoked or expired grant (409 grant_not_renewable)', async () => {
    const g = (await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 1, ttl_s: 3600, reason: 'read' } })).body;
    const far = await renew(g.id, { expires_at: iso(broker.clock.now() + 7 * 24 * HOUR + 1000), reason: 'too long' });
    expect(far.status).toBe(422);
    expect(far.body.code).toBe('expiry_too_long');
    expect((await renew(g.id, { expires_at: iso(broker.clock.now() + 7 * 24 * HOUR), reason: 'the cap' })).status).toBe(200);
    await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/revoke`, { json: { reason: 'done' } });
    const revoked = await renew(g.id, { ttl_s: 3600, reason: 'again' });
    expect(revoked.status).toBe(409);
    expect(revoked.body).toMatchObject({ code: 'grant_not_renewable', grant_status: 'revoked' });

    const short = (await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 2, ttl_s: 60, reason: 'brief' } })).body;
    broker.clock.advance(61 * 1000);
    const expired = await renew(short.id, { ttl_s: 3600, reason: 'too late' });
    expect(expired.status).toBe(409);
    expect(expired.body).toMatchObject({ code: 'grant_not_renewable', grant_status: 'expired' });
  });
});

describe('renewal of an L3 grant', () => {
  it('keeps the old expiry until two fresh approvals from two groups over the new terms, then renews', async () => {
    const t0 = broker.clock.now();
    const g = (await broker.client('main').post('/v1/grants', { group: 'main', provider: 'ops', level: 3, ttl_s: 3600, reason: 'release' })).body;
    await submit(broker, g.id, await signDecision(broker, sec, g));
    const active = (await submit(broker, g.id, await signDecision(broker, sre, g))).body.grant;
    expect(active).toMatchObject({ status: 'active', expires_at: iso(t0 + HOUR) });

    const res = await renew(g.id, { ttl_s: 4 * 3600, reason: 'release slipped' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'pending_approval', renewal: { status: 'pending_approval', expires_at: iso(t0 + 4 * HOUR) }, grant: { expires_at: iso(t0 + HOUR) } });
    const renewal = res.body.renewal;
    expect(renewal.digest).not.toBe(g.digest);
    let shown = await show(g.id);
    expect(shown).toMatchObject({ status: 'active', expires_at: iso(t0 + HOUR), renewal: { id: renewal.id, digest: renewal.digest, expires_at: renewal.expires_at } });
    expect(shown.timeline.map((e: any) => e.kind)).toContain('grant.renewal_requested');
    const listed = (await bearer(broker, operator, 'GET', '/v1/grants?group=main&provider=ops&status=active')).body.data.find((x: any) => x.id === g.id);
    expect(listed.renewal).toMatchObject({ id: renewal.id, digest: renewal.digest });
    const approvalsPage = await (await fetch(new URL('/console/approvals', broker.url), { headers: { cookie: `console_session=${operator}` } })).text();
    expect(approvalsPage).toContain('data-testid="pending-renewal"');
    expect(approvalsPage).toContain(renewal.digest);
    // Offline (`broker approve --grant-file`), the grant JSON is reviewed as the renewal's terms: the digest is recomputed, not trusted.
    expect(reviewGrantFile(shown, broker.clock.now())).toMatchObject({ digest: renewal.digest, expires_at: renewal.expires_at, ttl_s: null });
    expect(() => reviewGrantFile({ ...shown, renewal: { ...shown.renewal, expires_at: iso(t0 + 5 * HOUR) } }, broker.clock.now())).toThrow(/not the digest of the terms with its expiry/);

    // The old approvals (over the old terms) do not renew it; the renewal's requester cannot approve it.
    expect((await submit(broker, g.id, await signDecision(broker, sec, g, 'approve', 601))).body.code).toBe('grant_not_pending');
    const olga = await makeApprover(broker, 'olga', 'sre');
    expect((await submit(broker, g.id, await signDecision(broker, olga, { id: g.id, digest: renewal.digest }))).body).toMatchObject({ code: 'approver_ineligible', rule: 'requester' });

    // The first fresh approval is recorded; the grant keeps its old expiry, in the API and the decision path.
    expect((await submit(broker, g.id, await signDecision(broker, sec, { id: g.id, digest: renewal.digest }))).body.outcome).toBe('recorded');
    shown = await show(g.id);
    expect(shown.expires_at).toBe(iso(t0 + HOUR));
    expect(broker.deps.grants.candidates('main', 'ops').find((v) => v.id === g.id)).toMatchObject({ expiresAt: t0 + HOUR, approvals: 2 });

    // The second, with `broker approve` on the broker host: it signs the renewal's terms.
    const keys = tempDir('broker-keys-');
    const { privateJwk, publicJwk } = await generateApproverKey('raj');
    await addApprover(broker.deps, { id: 'raj', group: 'developer', publicJwk }, 'operator:test');
    fs.writeFileSync(path.join(keys, 'raj.jwk'), JSON.stringify(privateJwk), { mode: 0o600 });
    const env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
    const approve = await runCli(['approve', g.id, '--key', path.join(keys, 'raj.jwk')], env);
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stderr).toContain(`expiry:          at ${renewal.expires_at}`);
    expect(JSON.parse(approve.stdout)).toMatchObject({ outcome: 'renewed', grant: { status: 'active' } });

    shown = await show(g.id);
    expect(shown).toMatchObject({ status: 'active', expires_at: iso(t0 + 4 * HOUR), renewal: null, digest: renewal.digest });
    expect(shown.timeline.find((e: any) => e.kind === 'grant.renewed').detail).toMatchObject({ previous_expires_at: iso(t0 + HOUR), expires_at: iso(t0 + 4 * HOUR), approvers: ['sec-1', 'raj'] });
    const task = await taskIn(broker, 'DOING', 'main');
    broker.clock.advance(2 * HOUR);
    const deploy = await call(broker, 'main', { action: 'ops.deploy', task_id: task });
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(200);
    expect(deploy.body.receipt.grant_id).toBe(g.id);
  });
});

describe('renewal through an access request', () => {
  it('an agent asks with renewal_of; the operator approval extends the same grant', async () => {
    const t0 = broker.clock.now();
    const g = (await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 2, ttl_s: 3600, reason: 'tests' } })).body;
    const asked = await broker.client('developer').post('/v1/grant-requests', { renewal_of: g.id, ttl_s: 6 * 3600, justification: 'the suite is slow' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body).toMatchObject({ renewal_of: g.id, renews: null });
    const approved = await bearer(broker, operator, 'POST', `/v1/grant-requests/${asked.body.id}/approve`, { json: { reason: 'ok' } });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.grant).toMatchObject({ id: g.id, expires_at: iso(t0 + 6 * HOUR) });
    expect(approved.body.request.grant_id).toBe(g.id);
    expect((await bearer(broker, operator, 'GET', '/v1/grants?group=developer&provider=ops&status=active')).body.data.filter((x: any) => x.id === g.id)).toHaveLength(1);
    const renewed = (await show(g.id)).timeline.find((e: any) => e.kind === 'grant.renewed');
    expect(renewed).toMatchObject({ actor: 'operator:olga', detail: { reason: `grant request ${asked.body.id}: the suite is slow` } });
  });
});
