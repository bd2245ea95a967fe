import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { addApprover, generateApproverKey } from '../../src/modules/grants/approvers.js';
import { bearer, makeApprover, signDecision, startGrantsBroker, submit, tokenFor } from './helpers.js';

/** The README's approver walk-through (docs/grants.md), as real CLI processes on the running server's data dir. */
describe('broker approvers keygen|add|list and broker approve', () => {
  let broker: TestBroker;
  let env: Record<string, string>;
  let keys: string;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
    keys = tempDir('broker-keys-');
  });
  afterAll(() => broker.stop());

  it('an approver key made and registered by the CLI approves an L3 grant with `broker approve`', async () => {
    const keyFile = path.join(keys, 'sam.jwk');
    const keygen = await runCli(['approvers', 'keygen', '--id', 'sam', '--out', keyFile], env);
    expect(keygen.code, keygen.stderr).toBe(0);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(keyFile, 'utf8'))).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'sam', alg: 'EdDSA' });
    const publicJwk = JSON.parse(keygen.stdout);
    expect(publicJwk.d).toBeUndefined();
    fs.writeFileSync(path.join(keys, 'sam.pub.jwk'), keygen.stdout);

    const add = await runCli(['approvers', 'add', '--id', 'sam', '--group', 'security', '--jwk', path.join(keys, 'sam.pub.jwk')], env);
    expect(add.code, add.stderr).toBe(0);
    const privateAsPublic = await runCli(['approvers', 'add', '--id', 'eve', '--group', 'sre', '--jwk', keyFile], env);
    expect(privateAsPublic.code).toBe(1);
    expect(privateAsPublic.stderr).toContain('private key');

    const g = (await broker.client('main').post('/v1/grants', { group: 'main', provider: 'ops', level: 3, reason: 'release' })).body;
    const approve = await runCli(['approve', g.id, '--key', keyFile], env);
    expect(approve.code, approve.stderr).toBe(0);
    expect(JSON.parse(approve.stdout)).toMatchObject({ outcome: 'recorded', grant: { status: 'pending_approval' } });

    const raj = await makeApprover(broker, 'raj', 'sre');
    expect((await submit(broker, g.id, await signDecision(broker, raj, g))).body.outcome).toBe('activated');
    const operator = await tokenFor(broker, 'operator', 'olga');
    const shown = await bearer(broker, operator, 'GET', `/v1/grants/${g.id}`);
    expect(shown.body.approvals.map((a: any) => [a.approver_id, a.approver_group, a.counts])).toEqual([
      ['sam', 'security', true],
      ['raj', 'sre', true],
    ]);
    expect(broker.deps.grants.candidates('main', 'ops').find((v) => v.id === g.id)).toMatchObject({ status: 'active', approvals: 2 });
  });

  it("`broker approve` refuses an approver of the grant's own group, signing on the host or offline, when an operator requested it", async () => {
    const { privateJwk, publicJwk } = await generateApproverKey('mia');
    await addApprover(broker.deps, { id: 'mia', group: 'main', publicJwk }, 'operator:test');
    const keyFile = path.join(keys, 'mia.jwk');
    fs.writeFileSync(keyFile, JSON.stringify(privateJwk), { mode: 0o600 });
    const operator = await tokenFor(broker, 'operator', 'olga');
    const g = (await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'main', provider: 'ops', level: 3, reason: 'release by olga' } })).body;
    expect(g.requested_by).toBe('operator:olga');

    const onHost = await runCli(['approve', g.id, '--key', keyFile], env);
    expect(onHost.code).toBe(1);
    expect(onHost.stderr).toMatch(/approver_ineligible: Approver mia is of the main group and the grant is for main/);

    const grantFile = path.join(keys, 'grant.json');
    fs.writeFileSync(grantFile, JSON.stringify((await bearer(broker, operator, 'GET', `/v1/grants/${g.id}`)).body));
    const jwsFile = path.join(keys, 'mia.jws');
    const offline = await runCli(['approve', '--grant-file', grantFile, '--key', keyFile, '--out', jwsFile], env);
    expect(offline.code, offline.stderr).toBe(0);
    const submitted = await runCli(['approve', g.id, '--jws', jwsFile], env);
    expect(submitted.code).toBe(1);
    expect(submitted.stderr).toContain('approver_ineligible');

    const shown = await bearer(broker, operator, 'GET', `/v1/grants/${g.id}`);
    expect(shown.body.status).toBe('pending_approval');
    expect(shown.body.approvals).toEqual([]);
    expect(shown.body.timeline.filter((t: any) => t.kind === 'grant.approval_refused').map((t: any) => t.detail.code)).toEqual(['approver_ineligible', 'approver_ineligible']);
  });
});
