import fs from 'node:fs';
import path from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOperator } from '../../src/platform/cli.js';
import { addApprover } from '../../src/modules/grants/approvers.js';
import { termsDigest } from '../../src/modules/grants/terms.js';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli, type CliResult } from '../helpers/process.js';
import { bearer, startGrantsBroker, tokenFor } from './helpers.js';

/**
 * docs/grants.md "Approvers and their signatures", offline approval: the approver signs on their own machine from the
 * grant JSON `GET /v1/grants/{id}` answers (`broker approve --grant-file FILE --key FILE`, in a
 * process whose data directory does not exist), and the operator submits the JWS on the broker
 * host (`broker approve <grant-id> --jws FILE`). Real processes, real SQLite, real Ed25519.
 */
describe('broker approve --grant-file (offline) and --jws (submit)', () => {
  let broker: TestBroker;
  let hostEnv: Record<string, string>;
  /** The approver's machine: no broker data dir, no policies. */
  let laptopEnv: Record<string, string>;
  let laptopDataDir: string;
  let work: string;
  let operator: string;
  let auditor: string;
  const keys: Record<string, string> = {};
  const carrier = cliOperator();

  beforeAll(async () => {
    broker = await startGrantsBroker();
    hostEnv = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
    work = tempDir('broker-offline-');
    laptopDataDir = path.join(work, 'no-broker-here');
    laptopEnv = { BROKER_DATA_DIR: laptopDataDir, BROKER_POLICIES_DIR: path.join(work, 'no-policies'), BROKER_LOG_LEVEL: 'warn' };
    operator = await tokenFor(broker, 'operator', 'olga');
    auditor = await tokenFor(broker, 'auditor', 'carol');
    for (const [id, group] of [['sam', 'security'], ['raj', 'sre']] as const) {
      keys[id] = path.join(work, `${id}.jwk`);
      const keygen = await runCli(['approvers', 'keygen', '--id', id, '--out', keys[id]!], laptopEnv);
      expect(keygen.code, keygen.stderr).toBe(0);
      await addApprover(broker.deps, { id, group, publicJwk: JSON.parse(keygen.stdout) }, 'operator:test');
    }
  });
  afterAll(() => broker.stop());

  /** An L3 grant for main, created by operator olga over HTTP. */
  const createL3 = async (terms: Record<string, unknown> = {}) => {
    const res = await bearer(broker, operator, 'POST', '/v1/grants', {
      json: { group: 'main', provider: 'ops', level: 3, ttl_s: 3600, reason: 'release 1.4', allowed_actions: ['ops.deploy'], resources: ['acme/*'], ...terms },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  /** What the approver is given: the auditor's `GET /v1/grants/{id}` answer, byte for byte. */
  const fetchGrantFile = async (id: string, name = `${id}.json`): Promise<string> => {
    const res = await fetch(new URL(`/v1/grants/${id}`, broker.url), { headers: { authorization: `Bearer ${auditor}` } });
    expect(res.status).toBe(200);
    const file = path.join(work, name);
    fs.writeFileSync(file, await res.text());
    return file;
  };
  const editFile = (file: string, edit: (g: any) => void, name: string): string => {
    const g = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(g);
    const out = path.join(work, name);
    fs.writeFileSync(out, JSON.stringify(g, null, 2));
    return out;
  };
  /** `broker approve --grant-file …` on the approver's machine; the data dir must stay absent. */
  const signOffline = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await runCli(['approve', ...args], laptopEnv, input);
    expect(fs.existsSync(laptopDataDir), 'offline signing made a data directory').toBe(false);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    return r;
  };
  const saveJws = (r: CliResult, name: string): string => {
    const file = path.join(work, name);
    fs.writeFileSync(file, r.stdout);
    return file;
  };
  const submitOnHost = (grantId: string, jwsFile: string, input?: string) => runCli(['approve', grantId, '--jws', jwsFile], hostEnv, input);
  const show = async (id: string) => (await bearer(broker, operator, 'GET', `/v1/grants/${id}`)).body;

  it('two approvers sign offline from the fetched grant JSON; the operator submits both with --jws and the grant activates', async () => {
    const g = await createL3();
    expect(g.status).toBe('pending_approval');
    const grantFile = await fetchGrantFile(g.id);

    const sam = await signOffline(['--grant-file', grantFile, '--key', keys.sam!]);
    expect(sam.code, sam.stderr).toBe(0);
    const samJws = sam.stdout.trim();
    expect(decodeProtectedHeader(samJws)).toEqual({ alg: 'EdDSA', kid: 'sam' });
    const payload = decodeJwt(samJws);
    expect(payload).toMatchObject({ grant_id: g.id, grant_digest: g.digest, decision: 'approve' });
    expect(payload.exp! - payload.iat!).toBe(15 * 60);
    // the terms it signs, on stderr
    for (const line of [
      `signing an APPROVAL of ${g.id}:`,
      'group:           "main"',
      'provider:        "ops"',
      'level:           L3',
      'allowed actions: "ops.deploy"',
      'denied actions:  none',
      'resources:       "acme/*"',
      'expiry:          3600 s after activation',
      'reason:          "release 1.4"',
      'requested by:    "operator:olga"',
      `approvals until: ${g.pending_expires_at}`,
      `digest:          ${g.digest}`,
    ]) {
      expect(sam.stderr).toContain(line);
    }

    // raj writes it to a file instead: mode 0600 even over an existing, readable file
    const rajFile = path.join(work, 'raj.jws');
    fs.writeFileSync(rajFile, 'old', { mode: 0o644 });
    const raj = await signOffline(['--grant-file', grantFile, '--key', keys.raj!, '--ttl', '1h', '--out', rajFile]);
    expect(raj.code, raj.stderr).toBe(0);
    expect(raj.stdout).toBe('');
    expect(fs.statSync(rajFile).mode & 0o777).toBe(0o600);
    const rajPayload = decodeJwt(fs.readFileSync(rajFile, 'utf8').trim());
    expect(rajPayload).toMatchObject({ grant_id: g.id, grant_digest: g.digest, decision: 'approve' });
    expect(rajPayload.exp! - rajPayload.iat!).toBe(3600);

    const first = await submitOnHost(g.id, saveJws(sam, 'sam.jws'));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ outcome: 'recorded', grant: { id: g.id, status: 'pending_approval' } });
    const second = await submitOnHost(g.id, rajFile);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ outcome: 'activated', grant: { id: g.id, status: 'active' } });

    const after = await show(g.id);
    expect(after.status).toBe('active');
    expect(after.approvals.map((a: any) => [a.approver_id, a.approver_group, a.decision, a.counts])).toEqual([
      ['sam', 'security', 'approve', true],
      ['raj', 'sre', 'approve', true],
    ]);
    // the audit rows of the host approve path: the approver (from the verified kid) is the actor,
    // and whoever carried the JWS is `submitted_by`, as over HTTP
    expect(after.timeline.map((t: any) => [t.kind, t.actor])).toEqual([
      ['grant.created', 'operator:olga'],
      ['grant.approval_recorded', 'approver:sam'],
      ['grant.approval_recorded', 'approver:raj'],
      ['grant.activated', 'system'],
    ]);
    expect(after.timeline[1].detail).toEqual({ decision: 'approve', approver_group: 'security', grant_digest: g.digest, submitted_by: carrier });
    expect(after.timeline[2].detail).toEqual({ decision: 'approve', approver_group: 'sre', grant_digest: g.digest, submitted_by: carrier });
    expect(after.timeline[3].detail).toMatchObject({ approvers: ['sam', 'raj'] });
    expect(broker.deps.grants.candidates('main', 'ops').find((v) => v.id === g.id)).toMatchObject({ status: 'active', approvals: 2 });

    // now active, it is refused at signing
    const activeFile = await fetchGrantFile(g.id, 'active.json');
    const late = await signOffline(['--grant-file', activeFile, '--key', keys.sam!]);
    expect(late.code).toBe(1);
    expect(late.stderr.trim()).toBe(`${activeFile}: grant ${g.id} is active, not pending_approval; there is nothing to approve`);

    // the grant file as `broker grants show` prints it signs the same digest (same shape as the API)
    const shown = await runCli(['grants', 'show', g.id], hostEnv);
    expect(Object.keys(JSON.parse(shown.stdout)).sort()).toEqual(Object.keys(after).sort());
  });

  it('terms edited in the file: with the digest left as fetched, signing refuses; without it, or with a recomputed one, the server refuses the signature', async () => {
    const g = await createL3();
    const grantFile = await fetchGrantFile(g.id);

    // 1. edited terms, digest left as fetched → refused at signing
    for (const [name, edit] of [
      ['resources', (f: any) => (f.resources = ['*'])],
      ['reason', (f: any) => (f.reason = 'routine cleanup')],
      ['level', (f: any) => (f.level = 2)],
    ] as const) {
      const edited = editFile(grantFile, edit, `edited-${name}.json`);
      const r = await signOffline(['--grant-file', edited, '--key', keys.sam!]);
      expect(r.code, name).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`the file's digest ${g.digest} is not the digest of its terms`);
      expect(r.stderr).toContain('the file was edited');
    }

    // 2. edited terms without a digest member: signed (the digest is the edited terms'), refused on submission
    const noDigest = editFile(grantFile, (f) => {
      f.reason = 'routine cleanup';
      delete f.digest;
    }, 'edited-no-digest.json');
    const signed = await signOffline(['--grant-file', noDigest, '--key', keys.sam!]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toContain('reason:          "routine cleanup"');
    expect(decodeJwt(signed.stdout.trim()).grant_digest).not.toBe(g.digest);
    const refused = await submitOnHost(g.id, saveJws(signed, 'edited-no-digest.jws'));
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('approval_invalid: The approval signs other terms than the grant has now (its terms changed); review them and sign again.');

    // 3. edited terms with the digest recomputed to match them: signed, refused on submission
    const forged = editFile(grantFile, (f) => {
      f.resources = ['*'];
      f.digest = termsDigest({ group: f.group, provider: f.provider, level: f.level, allowedActions: f.allowed_actions, deniedActions: f.denied_actions, resources: f.resources, reason: f.reason, ttlS: f.ttl_s, expiresAt: null });
    }, 'edited-redigested.json');
    const signed2 = await signOffline(['--grant-file', forged, '--key', keys.raj!]);
    expect(signed2.code, signed2.stderr).toBe(0);
    expect(signed2.stderr).toContain('resources:       "*"');
    const refused2 = await submitOnHost(g.id, saveJws(signed2, 'edited-redigested.jws'));
    expect(refused2.code).toBe(1);
    expect(refused2.stderr).toContain('approval_invalid: The approval signs other terms');

    const after = await show(g.id);
    expect(after.status).toBe('pending_approval');
    expect(after.approvals).toEqual([]);
    const refusals = after.timeline.filter((t: any) => t.kind === 'grant.approval_refused');
    expect(refusals.map((t: any) => [t.actor, t.detail.code, t.detail.submitted_by])).toEqual([
      ['approver:sam', 'approval_invalid', carrier],
      ['approver:raj', 'approval_invalid', carrier],
    ]);
  });

  it('--deny signed offline (grant file and JWS through stdin) rejects the grant once submitted', async () => {
    const g = await createL3();
    const grantJson = fs.readFileSync(await fetchGrantFile(g.id), 'utf8');
    const deny = await signOffline(['--grant-file', '-', '--key', keys.sam!, '--deny'], grantJson);
    expect(deny.code, deny.stderr).toBe(0);
    expect(deny.stderr).toContain(`signing a DENIAL of ${g.id}:`);
    expect(decodeJwt(deny.stdout.trim())).toMatchObject({ grant_id: g.id, grant_digest: g.digest, decision: 'deny' });

    const submitted = await submitOnHost(g.id, '-', deny.stdout);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(JSON.parse(submitted.stdout)).toMatchObject({ outcome: 'rejected', grant: { status: 'rejected' } });
    const after = await show(g.id);
    expect(after.status).toBe('rejected');
    expect(after.timeline.map((t: any) => [t.kind, t.actor])).toEqual([
      ['grant.created', 'operator:olga'],
      ['grant.approval_recorded', 'approver:sam'],
      ['grant.rejected', 'approver:sam'],
    ]);
    expect(after.timeline[1].detail).toMatchObject({ decision: 'deny', submitted_by: carrier });

    // a grant that is no longer pending is refused at signing
    const rejectedFile = await fetchGrantFile(g.id, 'rejected.json');
    const again = await signOffline(['--grant-file', rejectedFile, '--key', keys.raj!]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`${rejectedFile}: grant ${g.id} is rejected, not pending_approval; there is nothing to approve`);
  });

  it('refuses at signing a grant that is not pending: active L2, revoked, or past its approval window', async () => {
    const l2 = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 2, reason: 'fix #42' } });
    expect(l2.body.status).toBe('active');
    const active = await signOffline(['--grant-file', await fetchGrantFile(l2.body.id), '--key', keys.sam!]);
    expect(active.code).toBe(1);
    expect(active.stderr).toContain(`grant ${l2.body.id} is active, not pending_approval`);
    expect(active.stdout).toBe('');

    const g = await createL3();
    expect((await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/revoke`, { json: { reason: 'changed plans' } })).body.status).toBe('revoked');
    const revoked = await signOffline(['--grant-file', await fetchGrantFile(g.id), '--key', keys.sam!]);
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('is revoked, not pending_approval');

    const late = await createL3();
    const lateFile = editFile(await fetchGrantFile(late.id), (f) => (f.pending_expires_at = '2020-01-01T00:00:00.000Z'), 'late.json');
    const expired = await signOffline(['--grant-file', lateFile, '--key', keys.sam!]);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toContain(`grant ${late.id} waited for approvals until 2020-01-01T00:00:00.000Z; it has expired`);
  });

  it('malformed JSON, missing fields, a missing or public key file, bad options: exit 1 with one clear line, no stack trace', async () => {
    const g = await createL3();
    const grantFile = await fetchGrantFile(g.id);

    const notJson = path.join(work, 'not.json');
    fs.writeFileSync(notJson, '{"id": "grt_');
    const bad = await signOffline(['--grant-file', notJson, '--key', keys.sam!]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`^${notJson}: .*JSON`));

    const missing = editFile(grantFile, (f) => {
      delete f.reason;
      delete f.provider;
      f.level = 'high';
    }, 'missing.json');
    const r = await signOffline(['--grant-file', missing, '--key', keys.sam!]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${missing}: not a grant as GET /v1/grants/{id} answers it:`);
    for (const field of ['provider:', 'level:', 'reason:']) expect(r.stderr).toContain(field);

    const array = await signOffline(['--grant-file', '-', '--key', keys.sam!], '[]');
    expect(array.code).toBe(1);
    expect(array.stderr).toContain('stdin: not a grant as GET /v1/grants/{id} answers it: (file):');

    const noKey = await signOffline(['--grant-file', grantFile, '--key', path.join(work, 'nobody.jwk')]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr.trim()).toBe(`${path.join(work, 'nobody.jwk')}: ENOENT: no such file or directory, open '${path.join(work, 'nobody.jwk')}'`);

    const publicKey = path.join(work, 'public.jwk');
    fs.writeFileSync(publicKey, JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43) }));
    const notPrivate = await signOffline(['--grant-file', grantFile, '--key', publicKey]);
    expect(notPrivate.code).toBe(1);
    expect(notPrivate.stderr.trim()).toBe(`${publicKey}: not an approver private key (needs kid and d)`);

    const ttl = await signOffline(['--grant-file', grantFile, '--key', keys.sam!, '--ttl', 'soon']);
    expect(ttl.code).toBe(1);
    expect(ttl.stderr.trim()).toBe('--ttl: "soon" is not a duration such as 90s, 15m, 8h or 7d');

    const withId = await signOffline([g.id, '--grant-file', grantFile, '--key', keys.sam!]);
    expect(withId.code).toBe(1);
    expect(withId.stderr.trim()).toBe('--grant-file takes no <grant-id>: the grant id is in the file');

    const noKeyOption = await signOffline(['--grant-file', grantFile]);
    expect(noKeyOption.code).toBe(1);
    expect(noKeyOption.stderr.trim()).toBe('--grant-file needs --key FILE (your private JWK) to sign with');

    expect((await show(g.id)).timeline.map((t: any) => t.kind)).toEqual(['grant.created']);
  });

  it('--jws with --key is refused; a garbage or empty JWS file gets the server-side refusal, audited', async () => {
    const g = await createL3();
    const signed = await signOffline(['--grant-file', await fetchGrantFile(g.id), '--key', keys.sam!]);
    const jwsFile = saveJws(signed, 'both.jws');

    const both = await runCli(['approve', g.id, '--jws', jwsFile, '--key', keys.sam!], hostEnv);
    expect(both.code).toBe(1);
    expect(both.stderr.trim()).toBe('--jws and --key are mutually exclusive: --jws submits a decision already signed, --key signs one');
    const withDeny = await runCli(['approve', g.id, '--jws', jwsFile, '--deny'], hostEnv);
    expect(withDeny.code).toBe(1);
    expect(withDeny.stderr.trim()).toBe('--deny and --ttl are signed into the JWS; they do not go with --jws');

    const garbageFile = path.join(work, 'garbage.jws');
    fs.writeFileSync(garbageFile, 'not.a.jws\n');
    const garbage = await submitOnHost(g.id, garbageFile);
    expect(garbage.code).toBe(1);
    expect(garbage.stderr.trim()).toBe('approval_invalid: The approval is not a compact JWS.');

    const emptyFile = path.join(work, 'empty.jws');
    fs.writeFileSync(emptyFile, '\n');
    const empty = await submitOnHost(g.id, emptyFile);
    expect(empty.code).toBe(1);
    expect(empty.stderr.trim()).toBe(`${emptyFile}: empty; expected the compact JWS of an approval`);

    const wrongGrant = await createL3();
    const elsewhere = await submitOnHost(wrongGrant.id, jwsFile);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr.trim()).toBe(`approval_invalid: The approval is for ${g.id}, not ${wrongGrant.id}.`);

    const after = await show(g.id);
    expect(after.status).toBe('pending_approval');
    expect(after.timeline.map((t: any) => [t.kind, t.actor, t.detail.code, t.detail.submitted_by])).toEqual([
      ['grant.created', 'operator:olga', undefined, undefined],
      ['grant.approval_refused', carrier, 'approval_invalid', carrier],
    ]);
    // the valid one still goes through afterwards
    const ok = await submitOnHost(g.id, jwsFile);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).outcome).toBe('recorded');
  });
});
