/**
 * Every secret the broker holds or can derive is known to its redaction (and so to the refusal of
 * secrets in input) from start-up, not only once it is first used: after a real restart, before
 * any signed request, an operator's grant whose `reason` holds a group secret (the current
 * `.ipc_secret` and the rotated-out one still in its grace), the master key, the token-signing
 * key, a bearer token, the host's GitHub token or its Google key is refused, and so is the secret
 * of a rotation another process makes while the broker runs; none of them reaches the audit trail
 * (`GET /v1/audit`, `broker audit export`) or any byte of the database.
 *
 * Real processes throughout (`broker serve`, the CLI), because what is registered for redaction
 * lives in process memory: only a new process shows what a restart knows.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeServiceAccount } from '../fixtures/cloudlogs/credentials.js';
import { bearer } from '../grants/helpers.js';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';

let dataDir: string;
let env: Record<string, string>;
let serve: ServeProcess | null = null;
/** Each secret under test, by name, and the detector kind it must be refused as. */
const secrets: { name: string; value: string; kind: string }[] = [];
let operator: string;

async function cli(args: string[]): Promise<string> {
  const out = await runCli(args, env);
  expect(out.code, `broker ${args.join(' ')}: ${out.stderr}`).toBe(0);
  return out.stdout;
}

/** `broker secrets export` into a fresh directory: the `.ipc_secret` a group's container gets. */
async function ipcSecret(group: string): Promise<string> {
  const dir = tempDir('ipc-');
  await cli(['secrets', 'export', '--group', group, '--out', dir]);
  return (JSON.parse(fs.readFileSync(path.join(dir, '.ipc_secret'), 'utf8')) as { secret: string }).secret;
}

beforeAll(async () => {
  dataDir = tempDir();
  const google = writeServiceAccount(tempDir('gcp-'));
  // A classic 40-hex personal access token: no pattern knows its shape, only its registration does.
  const githubToken = randomBytes(20).toString('hex');
  env = {
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    BROKER_LOG_LEVEL: 'warn',
    BROKER_KEY_GRACE_S: '86400',
    GITHUB_TOKEN: githubToken,
    GITHUB_API_URL: 'http://127.0.0.1:9',
    CLOUDLOGS_PROJECT_IDS: 'fake-project',
    GOOGLE_APPLICATION_CREDENTIALS: google.file,
  };
  // The developer group's key, rotated once: version 1 still verifies (grace), version 2 is current.
  const v1 = await ipcSecret('developer');
  await cli(['secrets', 'rotate', '--group', 'developer']);
  const v2 = await ipcSecret('developer');
  expect(v2).not.toBe(v1);
  operator = (await cli(['token', '--role', 'operator', '--subject', 'alice'])).trim();
  secrets.push(
    { name: 'group secret, current version', value: v2, kind: 'broker_secret' },
    { name: 'group secret, rotated version in grace', value: v1, kind: 'broker_secret' },
    { name: 'master key', value: fs.readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim(), kind: 'broker_secret' },
    { name: 'token-signing key', value: (JSON.parse(fs.readFileSync(path.join(dataDir, 'token.key'), 'utf8')) as { d: string }).d, kind: 'broker_secret' },
    { name: 'bearer token', value: operator, kind: 'jwt' },
    { name: 'GitHub token', value: githubToken, kind: 'broker_secret' },
    { name: 'Google key id', value: google.privateKeyId, kind: 'broker_secret' },
  );
  // The restart: a new process on the same data directory. No signed request is ever made.
  serve = await startServeProcess({ ...env, BROKER_LOG_LEVEL: 'info' });
});

afterAll(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

describe('after a restart, before any signed request, every secret is known to redaction', () => {
  const at = () => ({ url: serve!.url }) as TestBroker;

  it('refuses a grant whose reason holds each secret, naming its kind, never its value', async () => {
    for (const s of secrets) {
      const answer = await bearer(at(), operator, 'POST', '/v1/grants', {
        json: { group: 'developer', provider: 'github', level: 1, resources: ['acme/api'], reason: `debugging: the value is ${s.value} (sorry)` },
      });
      expect({ name: s.name, status: answer.status, code: answer.body.code, secrets: answer.body.secrets }).toEqual({
        name: s.name,
        status: 422,
        code: 'secret_in_input',
        secrets: [{ path: ['reason'], in: 'value', kind: s.kind }],
      });
      expect(JSON.stringify(answer.body).includes(s.value), `${s.name} echoed`).toBe(false);
    }
  });

  it('refuses the secret of a rotation another process made while it runs, still before any signed request', async () => {
    await cli(['secrets', 'rotate', '--group', 'developer']);
    const v3 = await ipcSecret('developer');
    secrets.push({ name: 'group secret, rotated in by another process', value: v3, kind: 'broker_secret' });
    const answer = await bearer(at(), operator, 'POST', '/v1/grants', {
      json: { group: 'developer', provider: 'github', level: 1, resources: ['acme/api'], reason: `new key: ${v3}` },
    });
    expect({ status: answer.status, code: answer.body.code, secrets: answer.body.secrets }).toEqual({
      status: 422,
      code: 'secret_in_input',
      secrets: [{ path: ['reason'], in: 'value', kind: 'broker_secret' }],
    });
    expect(JSON.stringify(answer.body)).not.toContain(v3);
  });

  it('stores no grant and no audit row holding any of them: GET /v1/audit, `broker audit export`, the database bytes', async () => {
    const grants = await bearer(at(), operator, 'GET', '/v1/grants');
    expect(grants.status).toBe(200);
    const audit = await bearer(at(), operator, 'GET', '/v1/audit?limit=1000');
    expect(audit.status).toBe(200);
    expect(audit.body.data.length).toBeGreaterThan(0);

    serve!.child.kill('SIGTERM');
    expect(await serve!.exited).toBe(0);
    const exported = await cli(['audit', 'export']);
    expect(exported.split('\n').filter(Boolean).length).toBe(audit.body.data.length);
    const files = fs.readdirSync(dataDir).filter((f) => f.startsWith('broker.db'));
    expect(files).toContain('broker.db');
    const haystacks: Record<string, string> = {
      'GET /v1/audit': JSON.stringify(audit.body),
      'broker audit export': exported,
      ...Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(dataDir, f)).toString('latin1')])),
    };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const s of secrets) expect(text.includes(s.value), `${where} holds the ${s.name}`).toBe(false);
    }
    expect(grants.body.data).toEqual([]);
    expect(audit.body.data.filter((r: { kind: string }) => r.kind.startsWith('grant.'))).toEqual([]);
  });
});
