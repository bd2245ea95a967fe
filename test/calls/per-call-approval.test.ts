/**
 * Per-call approval end to end, through a running broker and the real GitHub fake
 * (@octokit/fixtures-server behind a counting proxy): `github.merge_pull` is held (202
 * `approval_required`, nothing sent), approved by two approvers of two groups with JWS over the
 * request digest, then runs exactly once; a repeated or third approval runs nothing; an approval
 * over tampered params and the same key with other params are refused; the calling group cannot
 * approve; a held call expires unexecuted after its TTL.
 */
import http from 'node:http';
import httpProxy from 'http-proxy';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { addApprover, generateApproverKey } from '../../src/modules/grants/approvers.js';
import { requestDigest, signCallApproval } from '../../src/modules/calls/approval/request.js';
import fs from 'node:fs';
import path from 'node:path';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { approveTwice, auditKinds, call, grant, taskIn } from './helpers.js';
import { FIXTURE_TOKEN, ORG, startGitHubFixtures, type GitHubFixtures } from '../providers/github/fixtures.js';

type Key = Awaited<ReturnType<typeof generateApproverKey>>;

let fx: GitHubFixtures;
let broker: TestBroker;
let mainTask: string;
let operator: string;
const received: string[] = [];
let upstream: string | null = null;
let server: http.Server;
const keys: Record<string, Key> = {};
const saved: Record<string, string | undefined> = {};

const MERGE = { owner: ORG, repo: 'merge-pull', pull_number: 1, merge_method: 'squash' };
const merges = () => received.filter((r) => r.startsWith('PUT ') && r.includes('/merge')).length;

beforeAll(async () => {
  fx = await startGitHubFixtures();
  const forward = httpProxy.createProxyServer({});
  server = http.createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    if (upstream === null) return void res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"no scenario"}');
    forward.web(req, res, { target: upstream }, (err) => res.destroy(err));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  for (const k of ['GITHUB_TOKEN', 'GITHUB_API_URL'] as const) saved[k] = process.env[k];
  process.env['GITHUB_TOKEN'] = FIXTURE_TOKEN;
  process.env['GITHUB_API_URL'] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  broker = await startBroker();
  const l3 = await grant(broker, { group: 'main', provider: 'github', level: 3, resources: [`${ORG}/merge-pull`], ttl_s: 7 * 24 * 3600 });
  await approveTwice(broker, l3);
  mainTask = await taskIn(broker, 'DOING', 'main');
  for (const [id, group] of [['pc-sec', 'security'], ['pc-sec2', 'security'], ['pc-dev', 'developer'], ['pc-main', 'main']] as const) {
    keys[id] = await generateApproverKey(id);
    await addApprover(broker.deps, { id, group, publicJwk: keys[id]!.publicJwk }, 'operator:test');
  }
  operator = (await broker.deps.tokens.mint('operator', 'olga', 24 * 3600)).token;
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fx.close();
});
beforeEach(() => {
  received.length = 0;
  upstream = null;
});

/** Submits an approval JWS with the operator's bearer token, raw as application/jose. */
async function submit(group: string, requestId: string, jws: string): Promise<{ status: number; body: any }> {
  const res = await fetch(new URL(`/v1/calls/${group}/${requestId}/approvals`, broker.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/jose', 'idempotency-key': randomUUID() },
    body: jws,
  });
  return { status: res.status, body: await res.json() };
}

const sign = (id: string, requestId: string, digest: string, group = 'main') => signCallApproval(keys[id]!.privateJwk, { group, request_id: requestId, request_digest: digest }, broker.clock.now(), 600);

/** Holds a merge_pull as main and returns the key and the held request's digest, as the approver reads them. */
async function hold(params: Record<string, unknown> = MERGE): Promise<{ key: string; digest: string; view: any }> {
  const key = randomUUID();
  const res = await call(broker, 'main', { action: 'github.merge_pull', params, task_id: mainTask }, key);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect(res.body).toMatchObject({ request_id: key, status: 'awaiting_approval', code: 'approval_required', status_url: `/v1/ext/calls/${key}`, approvals_required: 2 });
  expect(res.body.receipt).toMatchObject({ decision: 'held', code: 'approval_required' });
  const view = await broker.client('main').get(`/v1/ext/calls/${key}`);
  expect(view.status).toBe(200);
  return { key, digest: res.body.request_digest, view: view.body };
}

describe('per-call approval of github.merge_pull', () => {
  it('holds the call, runs it once after two approvers of two groups, and never again', async () => {
    upstream = (await fx.load('merge-pull')).url;
    const { key, digest, view } = await hold();
    expect(view.status).toBe('awaiting_approval');
    // What the approver reviews hashes to what it signs: the exact request.
    expect(requestDigest(view.approval.request)).toBe(digest);
    expect(view.approval.request).toMatchObject({ action: 'github.merge_pull', group: 'main', request_id: key, resources: [`${ORG}/merge-pull`], task_id: mainTask });
    expect(received).toEqual([]);

    // The calling group's approver cannot approve its own call.
    const own = await submit('main', key, await sign('pc-main', key, digest));
    expect(own.status).toBe(403);
    expect(own.body).toMatchObject({ code: 'approver_ineligible', rule: 'requester' });

    const first = await sign('pc-sec', key, digest);
    expect(await submit('main', key, first)).toMatchObject({ status: 200, body: { outcome: 'recorded', answer: null } });
    expect((await submit('main', key, first)).body.outcome).toBe('replayed');
    // A second approver of the same group does not count.
    expect((await submit('main', key, await sign('pc-sec2', key, digest))).body).toMatchObject({ code: 'approver_ineligible', rule: 'same_group' });
    expect(received).toEqual([]);

    // The second approver signs offline with `broker approve-call --call-file`, from the call as an operator fetched it.
    const dir = tempDir('broker-approve-call-');
    fs.writeFileSync(path.join(dir, 'pc-dev.jwk'), JSON.stringify(keys['pc-dev']!.privateJwk), { mode: 0o600 });
    const fetched = await fetch(new URL(`/v1/calls/main/${key}`, broker.url), { headers: { authorization: `Bearer ${operator}` } });
    fs.writeFileSync(path.join(dir, 'call.json'), await fetched.text());
    const signed = await runCli(['approve-call', '--call-file', path.join(dir, 'call.json'), '--key', path.join(dir, 'pc-dev.jwk')], {});
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toContain(`digest:     ${digest}`);
    const second = await submit('main', key, signed.stdout.trim());
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.outcome).toBe('executed');
    expect(second.body.answer.status).toBe(200);
    expect(second.body.answer.body.result).toMatchObject({ merged: true });
    expect(second.body.call.status).toBe('succeeded');
    expect(second.body.call.approval.approvals.map((a: any) => a.approver_id)).toEqual(['pc-sec', 'pc-dev']);
    expect(merges()).toBe(1);
    const sent = received.length;

    // Another approval runs nothing; the key replays the stored outcome.
    const late = await submit('main', key, await sign('pc-sec2', key, digest));
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'call_not_awaiting_approval', call_status: 'succeeded' });
    const retry = await call(broker, 'main', { action: 'github.merge_pull', params: MERGE, task_id: mainTask }, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(received.length).toBe(sent);
    expect(merges()).toBe(1);

    expect(await auditKinds(broker, 'main', key)).toEqual([
      'call.held',
      'call.approval_refused',
      'call.approval_recorded',
      'call.approval_refused',
      'call.approval_recorded',
      'call.approved',
      'call.succeeded',
      'call.approval_refused',
    ]);
  });

  it('refuses an approval over tampered params, and the same key with other params; nothing runs', async () => {
    const { key, digest, view } = await hold();
    const tampered = requestDigest({ ...view.approval.request, params: { ...MERGE, merge_method: 'merge' } });
    expect(tampered).not.toBe(digest);
    const res = await submit('main', key, await sign('pc-sec', key, tampered));
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'approval_invalid', current_digest: digest, signed_digest: tampered });
    // An approval of this request for another key does not count for this one.
    const other = await submit('main', key, await sign('pc-sec', randomUUID(), digest));
    expect(other.body.code).toBe('approval_invalid');
    const again = await call(broker, 'main', { action: 'github.merge_pull', params: { ...MERGE, merge_method: 'merge' }, task_id: mainTask }, key);
    expect(again.status).toBe(422);
    expect(again.body.code).toBe('idempotency_key_reused');
    expect((await broker.client('main').get(`/v1/ext/calls/${key}`)).body.approval.approvals).toEqual([]);
    expect(received).toEqual([]);
  });

  it('expires a held call unexecuted after its TTL (1 h by default)', async () => {
    const { key, digest } = await hold();
    await submit('main', key, await sign('pc-sec', key, digest));
    broker.clock.advance(3600 * 1000);
    expect((await broker.client('main').get(`/v1/ext/calls/${key}`)).body.status).toBe('expired');
    const late = await submit('main', key, await sign('pc-dev', key, digest));
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('call_approval_expired');
    const retry = await call(broker, 'main', { action: 'github.merge_pull', params: MERGE, task_id: mainTask }, key);
    expect(retry.status).toBe(409);
    expect(retry.body).toMatchObject({ code: 'call_approval_expired', call_status: 'expired' });
    expect(await auditKinds(broker, 'main', key)).toContain('call.expired');
    expect(received).toEqual([]);
  });

  it('decides the call again at its second approval: with its grant revoked meanwhile, the approval is refused and nothing runs', async () => {
    const { key, digest } = await hold();
    await submit('main', key, await sign('pc-sec', key, digest));
    const l3 = (await broker.client('main').get('/v1/ext/capabilities')).body.actions.find((a: any) => a.action === 'github.merge_pull').grant_id;
    const revoked = await fetch(new URL(`/v1/grants/${l3}/revoke`, broker.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify({ reason: 'incident' }),
    });
    expect(revoked.status).toBe(200);
    const res = await submit('main', key, await sign('pc-dev', key, digest));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('no_capability');
    expect((await broker.client('main').get(`/v1/ext/calls/${key}`)).body).toMatchObject({ status: 'awaiting_approval', approval: { approvals: [{ approver_id: 'pc-sec' }] } });
    expect(received).toEqual([]);
  });
});
