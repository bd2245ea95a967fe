/**
 * `broker grants requests [list|show|approve|deny]` as real CLI processes on a running broker's
 * data directory: what an operator does with agents' access requests from the broker host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

describe('broker grants requests', () => {
  let broker: TestBroker;
  let env: Record<string, string>;
  const ask = (group: string, justification: string) =>
    broker.client(group).post('/v1/grant-requests', { provider: 'github', level: 1, allowed_actions: ['github.get_repo'], resources: ['acme/*'], ttl_s: 3600, justification });
  beforeAll(async () => {
    broker = await startBroker();
    env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
  });
  afterAll(() => broker.stop());

  it('lists the pending requests, approves one (the grant is active and the agent may call) and denies one with its reason', async () => {
    const wanted = (await ask('developer', 'read the repo for #12')).body;
    const unwanted = (await ask('security', 'curious')).body;

    const listed = await runCli(['grants', 'requests'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).data.map((r: { id: string }) => r.id)).toEqual([wanted.id, unwanted.id]);
    const mine = await runCli(['grants', 'requests', 'list', '--group', 'developer'], env);
    expect(JSON.parse(mine.stdout).data.map((r: { id: string }) => r.id)).toEqual([wanted.id]);

    const approved = await runCli(['grants', 'requests', 'approve', wanted.id, '--reason', 'for #12'], env);
    expect(approved.code, approved.stderr).toBe(0);
    const { request, grant } = JSON.parse(approved.stdout);
    expect(request).toMatchObject({ id: wanted.id, status: 'approved', decision_reason: 'for #12', grant_id: grant.id });
    expect(grant).toMatchObject({ group: 'developer', provider: 'github', level: 1, status: 'active', requested_by: expect.stringMatching(/^operator:/) });
    // The grant allows the action; only GitHub's credentials, absent on a test host, are missing.
    const caps = (await broker.client('developer').get('/v1/ext/capabilities')).body.actions as { action: string; code: string | null; grant_id: string }[];
    const repo = caps.find((a) => a.action === 'github.get_repo')!;
    expect(repo.grant_id).toBe(grant.id);
    expect([null, 'provider_unavailable']).toContain(repo.code);

    const noReason = await runCli(['grants', 'requests', 'deny', unwanted.id], env);
    expect(noReason.code).toBe(1);
    const denied = await runCli(['grants', 'requests', 'deny', unwanted.id, '--reason', 'no task needs it'], env);
    expect(denied.code, denied.stderr).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({ status: 'denied', decision_reason: 'no task needs it' });
    expect((await broker.client('security').get(`/v1/grant-requests/${unwanted.id}`)).body).toMatchObject({ status: 'denied', decision_reason: 'no task needs it' });

    const pending = await runCli(['grants', 'requests'], env);
    expect(JSON.parse(pending.stdout).data).toEqual([]);
    const all = await runCli(['grants', 'requests', 'list', '--status', 'all'], env);
    expect(JSON.parse(all.stdout).data.map((r: { status: string }) => r.status)).toEqual(['approved', 'denied']);
    const shown = await runCli(['grants', 'requests', 'show', wanted.id], env);
    expect(JSON.parse(shown.stdout).timeline.map((t: { kind: string }) => t.kind)).toEqual(['grant_request.created', 'grant_request.approved', 'grant_request.granted']);
  });

  it('refuses to decide a decided or unknown request, with the code on stderr and exit code 1', async () => {
    const id = (await ask('developer', 'twice')).body.id as string;
    expect((await runCli(['grants', 'requests', 'deny', id, '--reason', 'no'], env)).code).toBe(0);
    const late = await runCli(['grants', 'requests', 'approve', id], env);
    expect([late.code, late.stderr]).toEqual([1, expect.stringContaining('grant_request_not_pending')]);
    const unknown = await runCli(['grants', 'requests', 'approve', 'grq_01JAAAAAAAAAAAAAAAAAAAAAAA'], env);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining('not_found')]);
  });

  it('applies the ceiling again at the approval: lowered since the request, the approval is refused and the request is pending again', async () => {
    const policies = tempDir('broker-policies-');
    fs.copyFileSync(path.join(REPO_ROOT, 'policies', 'groups.json'), path.join(policies, 'groups.json'));
    const lowered = await startBroker({ env: { BROKER_POLICIES_DIR: policies } });
    try {
      const asked = await lowered.client('developer').post('/v1/grant-requests', { provider: 'github', level: 2, allowed_actions: ['github.create_issue'], resources: ['acme/api'], ttl_s: 3600, justification: 'file the bug' });
      expect(asked.status, JSON.stringify(asked.body)).toBe(201);
      const groups = JSON.parse(fs.readFileSync(path.join(policies, 'groups.json'), 'utf8')) as { groups: { name: string; ceiling: string }[] };
      for (const g of groups.groups) if (g.name === 'developer') g.ceiling = 'L1';
      fs.writeFileSync(path.join(policies, 'groups.json'), JSON.stringify(groups));

      const cliEnv = { BROKER_DATA_DIR: lowered.dataDir, BROKER_POLICIES_DIR: policies, BROKER_LOG_LEVEL: 'warn' };
      const refused = await runCli(['grants', 'requests', 'approve', asked.body.id], cliEnv);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('level_above_ceiling')]);
      const shown = JSON.parse((await runCli(['grants', 'requests', 'show', asked.body.id], cliEnv)).stdout);
      expect(shown).toMatchObject({ status: 'pending', decided_by: null, grant_id: null });
      expect(shown.timeline.map((t: { kind: string }) => t.kind)).toEqual(['grant_request.created', 'grant_request.approved', 'grant_request.approval_failed']);
      expect(shown.timeline[2].detail).toMatchObject({ code: 'level_above_ceiling' });
      expect((lowered.deps.db.sqlite.prepare('SELECT COUNT(*) AS n FROM grants').get() as { n: number }).n).toBe(0);
    } finally {
      await lowered.stop();
    }
  });
});
