/**
 * Refusal texts one can act on, through a real server: a level above the group's ceiling says
 * so (instead of "ask for an L3 grant" that can never be granted), "holds no grant" names the
 * revocation that took the grant away, problem+json puts `code` and `detail` before the large
 * `receipt`, and a token principal is "an auditor token", not "a auditor token".
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { call, grant } from './helpers.js';
import { testProvider, type TestProvider } from './provider.js';

let broker: TestBroker;
let tp: TestProvider;
beforeAll(async () => {
  tp = testProvider();
  broker = await startBroker({ providers: [tp.provider] });
});
afterAll(async () => {
  tp.release();
  await broker.stop();
});

const merge = (group: string) => call(broker, group, { action: 'github.merge_pull', params: { owner: 'acme', repo: 'api', pull_number: 7 } });
const operatorToken = async (subject: string) => (await broker.deps.tokens.mint('operator', subject, 3600)).token;
const asToken = (token: string, method: string, path: string, json?: unknown) =>
  fetch(new URL(path, broker.url), {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: json === undefined ? undefined : JSON.stringify(json),
  });

describe('a level above the group ceiling', () => {
  it("developer's github.merge_pull on an L2 grant names developer's ceiling (L2) and the groups that may hold L3", async () => {
    await grant(broker, { group: 'developer', provider: 'github', level: 2, resources: ['acme/*'] });
    const res = await merge('developer');
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('insufficient_level');
    expect(res.body.detail).toMatch(/^Grant grt_\w+ is L2 and group developer's ceiling is L2; github\.merge_pull needs L3, which only group main may hold/);
    expect(res.body.detail).toContain('ask a group that may (main)');
    expect(res.body.detail).not.toContain('ask for an L3 grant');
    expect(res.body).toMatchObject({ group_ceiling: 2, required_level: 3, groups_that_may_hold: ['main'] });

    const listed = await broker.client('developer').get('/v1/ext/capabilities');
    const mergePull = listed.body.actions.find((a: { action: string }) => a.action === 'github.merge_pull');
    expect(mergePull).toMatchObject({ allowed: false, code: 'insufficient_level' });
    expect(mergePull.detail).toContain("group developer's ceiling is L2");
  });

  it('a group with no grant at all hears the ceiling too; a group whose ceiling allows the level is told to ask for the grant', async () => {
    const security = await merge('security');
    expect(security.body.code).toBe('no_capability');
    expect(security.body.detail).toMatch(/^Group security holds no grant for provider github, and its ceiling is L1; github\.merge_pull needs L3, which only group main may hold/);
    expect(security.body.groups_that_may_hold).toEqual(['main']);

    await grant(broker, { group: 'main', provider: 'github', level: 2, resources: ['acme/*'] });
    const main = await merge('main');
    expect(main.body.code).toBe('insufficient_level');
    expect(main.body.detail).toMatch(/needs L3 but grant grt_\w+ is L2; ask for an L3 grant\.$/);
    expect(main.body.group_ceiling).toBeUndefined();
  });
});

describe('no grant after a revocation', () => {
  it('names the revoked grant, when, by whom and why', async () => {
    const before = await call(broker, 'security', { action: 'test.read' });
    expect(before.body.code).toBe('no_capability');
    expect(before.body.detail).toBe('Group security holds no grant for provider test; ask an operator or main for one (POST /v1/grants).');
    expect(before.body.revoked_grant).toBeUndefined();

    const g = await grant(broker, { group: 'security', level: 1 });
    expect((await call(broker, 'security', { action: 'test.read' })).status).toBe(200);
    broker.clock.advance(60_000);
    const revokedAt = new Date(broker.clock.now()).toISOString();
    const revoke = await asToken(await operatorToken('olga'), 'POST', `/v1/grants/${g.id}/revoke`, { reason: 'incident 42' });
    expect(revoke.status).toBe(200);

    const after = await call(broker, 'security', { action: 'test.read' });
    expect(after.status).toBe(403);
    expect(after.body.code).toBe('no_capability');
    expect(after.body.detail).toBe(
      `Group security holds no grant for provider test: grant ${g.id} was revoked at ${revokedAt} by operator:olga (reason: "incident 42"); ask an operator or main for a new one (POST /v1/grants).`,
    );
    expect(after.body.revoked_grant).toEqual({ id: g.id, revoked_at: revokedAt, revoked_by: 'operator:olga', reason: 'incident 42' });
    expect(after.body.receipt.steps.find((s: { step: string }) => s.step === 'grant')).toMatchObject({ result: 'fail', note: `no grant for test; ${g.id} revoked` });

    const listed = await broker.client('security').get('/v1/ext/capabilities');
    expect(listed.body.actions.find((a: { action: string }) => a.action === 'test.read').detail).toContain(`grant ${g.id} was revoked at ${revokedAt}`);
  });

  it('names the newest revocation; one without a reason says who revoked it', async () => {
    const first = await grant(broker, { group: 'developer', level: 1 });
    expect((await broker.client('main').post(`/v1/grants/${first.id}/revoke`, { reason: 'rotating' })).status).toBe(200);
    broker.clock.advance(1000);
    const second = await grant(broker, { group: 'developer', level: 2 });
    expect((await broker.client('main').post(`/v1/grants/${second.id}/revoke`, {})).status).toBe(200);
    const res = await call(broker, 'developer', { action: 'test.read' });
    expect(res.body.detail).toBe(
      `Group developer holds no grant for provider test: grant ${second.id} was revoked at ${new Date(broker.clock.now()).toISOString()} by main; ask an operator or main for a new one (POST /v1/grants).`,
    );
    expect(res.body.revoked_grant).toMatchObject({ id: second.id, revoked_by: 'main', reason: null });
  });
});

describe('problem+json member order', () => {
  it('puts type, title, status, code and detail first, before the receipt, in the bytes sent', async () => {
    const key = randomUUID();
    const res = await call(broker, 'security', { action: 'test.write' }, key);
    expect(res.status).toBe(403);
    const keys = Object.keys(res.body);
    expect(keys.slice(0, 5)).toEqual(['type', 'title', 'status', 'code', 'detail']);
    expect(keys.indexOf('code')).toBeLessThan(keys.indexOf('receipt'));

    const raw = await fetch(new URL('/v1/whoami', broker.url));
    const text = await raw.text();
    expect(text).toMatch(/^\{"type":"urn:nanoclaw-broker:problem:signature_missing","title":"signature missing","status":401,"code":"signature_missing","detail":/);
  });

  it('keeps the standard members when an extension carries the same name', async () => {
    const res = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'test', level: 9, reason: 'x' });
    expect(res.status).toBe(422);
    const keys = Object.keys(res.body);
    expect(keys.slice(0, 5)).toEqual(['type', 'title', 'status', 'code', 'detail']);
    expect(keys.indexOf('detail')).toBeLessThan(keys.indexOf('issues'));
    expect(res.body.status).toBe(422);
  });
});

describe('a token refused a route', () => {
  it('is "An auditor token" in the detail', async () => {
    const auditor = (await broker.deps.tokens.mint('auditor', 'audrey', 3600)).token;
    const res = await asToken(auditor, 'POST', '/v1/grants', { group: 'developer', provider: 'test', level: 1, reason: 'r' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/^An auditor token may not POST \/v1\/grants/);
  });
});
