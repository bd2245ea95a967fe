import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { bearer, createAsMain, startGrantsBroker, tokenFor } from './helpers.js';

describe('revocation takes effect on the next request', () => {
  let broker: TestBroker;
  let operator: string;
  let cliEnv: Record<string, string>;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    operator = await tokenFor(broker, 'operator', 'olga');
    cliEnv = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
  });
  afterAll(() => broker.stop());

  const read = (group: string) => broker.client(group).post('/v1/ext/calls', { action: 'ops.read', params: { resource: 'acme/api' } }, { idempotencyKey: randomUUID() });

  it('a revoked grant stops allowing calls at once (revoked by main)', async () => {
    const g = await createAsMain(broker, { group: 'developer', level: 1 });
    expect((await read('developer')).status).toBe(200);
    const res = await broker.client('main').post(`/v1/grants/${g.id}/revoke`, { reason: 'no longer needed' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'revoked', revoked_by: 'main', revoke_reason: 'no longer needed' });
    const denied = await read('developer');
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('no_capability');
  });

  it('revoking twice answers the same grant; an expired grant is 409 grant_not_revocable; only grantors revoke', async () => {
    const g = await createAsMain(broker, { group: 'developer', level: 2, ttl_s: 60 });
    expect((await broker.client('developer').post(`/v1/grants/${g.id}/revoke`, {})).status).toBe(403);
    const auditor = await tokenFor(broker, 'auditor', 'audrey');
    expect((await bearer(broker, auditor, 'POST', `/v1/grants/${g.id}/revoke`, { json: {} })).status).toBe(403);

    const first = await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/revoke`, { json: {} });
    expect(first.body).toMatchObject({ status: 'revoked', revoked_by: 'operator:olga' });
    const again = await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/revoke`, { json: { reason: 'again' } });
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(first.body.revoked_at);
    expect(again.body.revoke_reason).toBeNull();

    const short = await createAsMain(broker, { group: 'developer', level: 2, ttl_s: 60 });
    broker.clock.advance(60_000);
    const late = await bearer(broker, operator, 'POST', `/v1/grants/${short.id}/revoke`, { json: {} });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'grant_not_revocable', status: 409, grant_status: 'expired' });
    expect((await bearer(broker, operator, 'POST', '/v1/grants/grt_missing/revoke', { json: {} })).status).toBe(404);
  });

  it('`broker grants revoke --group X --all` in another process is seen by the running server on its next lookup', async () => {
    const dev = [await createAsMain(broker, { group: 'developer', level: 1 }), await createAsMain(broker, { group: 'developer', level: 2 })];
    const sec = await createAsMain(broker, { group: 'security', level: 1 });
    expect((await read('developer')).status).toBe(200);
    expect(broker.deps.grants.candidates('developer', 'ops').map((v) => v.id)).toEqual(expect.arrayContaining(dev.map((g) => g.id)));

    const out = await runCli(['grants', 'revoke', '--group', 'developer', '--all', '--reason', 'incident 42'], cliEnv);
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as { revoked: string[] };
    expect(result.revoked).toEqual(expect.arrayContaining(dev.map((g) => g.id)));

    expect(broker.deps.grants.candidates('developer', 'ops')).toEqual([]);
    const denied = await read('developer');
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('no_capability');
    expect((await read('security')).status).toBe(200);

    const shown = await bearer(broker, operator, 'GET', `/v1/grants/${dev[1]!.id}`);
    expect(shown.body).toMatchObject({ status: 'revoked', revoke_reason: 'incident 42' });
    expect(shown.body.revoked_by).toMatch(/^operator:/);
    const summary = await bearer(broker, operator, 'GET', '/v1/audit?subject=group:developer&kind=grants.revoked_all');
    expect(summary.body.data).toHaveLength(1);
    expect((await bearer(broker, operator, 'GET', `/v1/grants/${sec.id}`)).body.status).toBe('active');
  });

  it('`broker grants revoke <id>` and `broker grants create` work from the CLI too', async () => {
    // The CLI process has only the host's providers (github, …), not the tests' `ops`.
    const created = await runCli(['grants', 'create', '--group', 'developer', '--provider', 'github', '--level', 'L2', '--ttl', '2h', '--allow', 'github.get_repo,github.list_*', '--reason', 'cli'], cliEnv);
    expect(created.code, created.stderr).toBe(0);
    const g = JSON.parse(created.stdout);
    expect(g).toMatchObject({ level: 2, ttl_s: 7200, allowed_actions: ['github.get_repo', 'github.list_*'], status: 'active' });
    expect(broker.deps.grants.candidates('developer', 'github').map((v) => v.id)).toContain(g.id);
    const tooLong = await runCli(['grants', 'create', '--group', 'developer', '--provider', 'github', '--level', '2', '--ttl', '8d', '--reason', 'cli'], cliEnv);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('expiry_too_long');

    const revoked = await runCli(['grants', 'revoke', g.id, '--reason', 'cli done'], cliEnv);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(broker.deps.grants.candidates('developer', 'github').map((v) => v.id)).not.toContain(g.id);
  });
});
