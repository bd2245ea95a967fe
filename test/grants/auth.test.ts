import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';
import { bearer, createAsMain, startGrantsBroker, tokenFor } from './helpers.js';

describe('operator and auditor bearer tokens', () => {
  let broker: TestBroker;
  let operator: string;
  let auditor: string;
  let grantId: string;
  beforeAll(async () => {
    broker = await startGrantsBroker();
    operator = await tokenFor(broker, 'operator', 'olga');
    auditor = await tokenFor(broker, 'auditor', 'audrey', 8 * 3600);
    grantId = (await createAsMain(broker, { level: 1 })).id;
  });
  afterAll(() => broker.stop());

  /**
   * Signs a token with the broker's own key file, with any claims and its `kid` unless `header`
   * says otherwise (what a key thief could do).
   */
  async function forge(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    const jwk = JSON.parse(fs.readFileSync(path.join(broker.dataDir, 'token.key'), 'utf8')) as JWK;
    const now = Math.floor(broker.clock.now() / 1000);
    return new SignJWT({ role: 'auditor', jti: 'x', ...claims })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: broker.deps.tokens.kid, ...header })
      .setIssuer((claims.iss as string) ?? 'nanoclaw-broker')
      .setAudience((claims.aud as string) ?? 'nanoclaw-broker')
      .setSubject('mallory')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(await importJWK(jwk, 'EdDSA'));
  }

  it('the signing key is made at first start in the data dir, mode 0600', () => {
    const stat = fs.statSync(path.join(broker.dataDir, 'token.key'));
    expect(stat.mode & 0o777).toBe(0o600);
  });

  describe('auditors read grants and the audit trail, and nothing else', () => {
    it('may list and show grants, read calls and the audit trail', async () => {
      expect((await bearer(broker, auditor, 'GET', '/v1/grants')).status).toBe(200);
      expect((await bearer(broker, auditor, 'GET', '/v1/calls')).status).toBe(200);
      expect((await bearer(broker, auditor, 'GET', `/v1/grants/${grantId}`)).status).toBe(200);
      expect((await bearer(broker, auditor, 'GET', '/v1/audit')).status).toBe(200);
    });

    it('may not create, amend, revoke or approve: 403 forbidden', async () => {
      for (const [method, p, json] of [
        ['POST', '/v1/grants', { group: 'developer', provider: 'ops', level: 1, reason: 'r' }],
        ['PATCH', `/v1/grants/${grantId}`, { reason: 'r' }],
        ['POST', `/v1/grants/${grantId}/revoke`, {}],
        ['POST', `/v1/grants/${grantId}/approvals`, { jws: 'a.b.c' }],
      ] as const) {
        const res = await bearer(broker, auditor, method, p, { json });
        expect(res.status, `${method} ${p}`).toBe(403);
        expect(res.body.code).toBe('forbidden');
      }
      expect((await bearer(broker, operator, 'GET', `/v1/grants/${grantId}`)).body.status).toBe('active');
    });

    it('tokens reach no agent route (tasks, calls, whoami): 403 before any handler', async () => {
      for (const [method, p] of [
        ['GET', '/v1/whoami'],
        ['GET', '/v1/tasks'],
        ['POST', '/v1/tasks'],
        ['POST', '/v1/ext/calls'],
        ['GET', '/v1/ext/capabilities'],
      ] as const) {
        for (const token of [auditor, operator]) {
          const res = await bearer(broker, token, method, p, { json: method === 'POST' ? {} : undefined });
          expect(res.status, `${method} ${p}`).toBe(403);
          expect(res.body.code).toBe('forbidden');
        }
      }
    });
  });

  describe('agent groups never reach operator or auditor routes', () => {
    it('no group reads the audit trail, not even main', async () => {
      for (const group of ['main', 'developer', 'security']) {
        const res = await broker.client(group).get('/v1/audit');
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden');
      }
    });

    it('no group reads grants (main creates and revokes them, and that is all)', async () => {
      for (const group of ['main', 'developer', 'security']) {
        expect((await broker.client(group).get('/v1/grants')).status).toBe(403);
        expect((await broker.client(group).get(`/v1/grants/${grantId}`)).status).toBe(403);
      }
    });
  });

  describe('bad tokens: 401 unauthorized with a Bearer challenge', () => {
    const expect401 = async (authorization: string) => {
      const res = await fetch(`${broker.url}/v1/grants`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('unauthorized');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="nanoclaw-broker"/);
    };

    it('expired at its exact exp second', async () => {
      const { token, claims } = await broker.deps.tokens.mint('auditor', 'brief', 60);
      const start = broker.clock.now();
      try {
        broker.clock.set(claims.expiresAt - 1);
        expect((await bearer(broker, token, 'GET', '/v1/grants')).status).toBe(200);
        broker.clock.set(claims.expiresAt);
        await expect401(`Bearer ${token}`);
      } finally {
        broker.clock.set(start);
      }
    });

    it('signed by another key, tampered, malformed, or another scheme', async () => {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const now = Math.floor(broker.clock.now() / 1000);
      const foreign = await new SignJWT({ role: 'operator', jti: 'x' })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
        .setIssuer('nanoclaw-broker')
        .setAudience('nanoclaw-broker')
        .setSubject('mallory')
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(privateKey);
      await expect401(`Bearer ${foreign}`);
      const [h, , s] = auditor.split('.');
      const body = Buffer.from(JSON.stringify({ role: 'operator', sub: 'audrey', iss: 'nanoclaw-broker', aud: 'nanoclaw-broker', iat: now, exp: now + 60, jti: 'x' })).toString('base64url');
      await expect401(`Bearer ${h}.${body}.${s}`);
      await expect401('Bearer not-a-token');
      await expect401(`Basic ${Buffer.from('olga:pw').toString('base64')}`);
      await expect401('Bearer');
    });

    it('wrong audience, issuer, role, typ or kid, even with the broker key', async () => {
      await expect401(`Bearer ${await forge({ aud: 'someone-else' })}`);
      await expect401(`Bearer ${await forge({ iss: 'someone-else' })}`);
      await expect401(`Bearer ${await forge({ role: 'admin' })}`);
      await expect401(`Bearer ${await forge({}, { typ: 'at+jwt' })}`);
      await expect401(`Bearer ${await forge({}, { kid: undefined })}`);
      await expect401(`Bearer ${await forge({}, { kid: 42 })}`);
      expect((await fetch(`${broker.url}/v1/grants`, { headers: { authorization: `Bearer ${await forge({})}` } })).status).toBe(200);
    });
  });

  describe('GET /v1/audit', () => {
    it('filters by subject, kind prefix and actor, pages with since, and carries the chain hashes', async () => {
      const g = await createAsMain(broker, { level: 2, ttl_s: 60 });
      await bearer(broker, operator, 'POST', `/v1/grants/${g.id}/revoke`, { json: { reason: 'test' } });
      const bySubject = await bearer(broker, auditor, 'GET', `/v1/audit?subject=${g.id}`);
      expect(bySubject.body.data.map((r: any) => [r.kind, r.actor])).toEqual([
        ['grant.created', 'main'],
        ['grant.revoked', 'operator:olga'],
      ]);
      expect(bySubject.body.data[1].prev_hash).toMatch(/^[0-9a-f]{64}$/);
      const byKind = await bearer(broker, auditor, 'GET', '/v1/audit?kind=grant.*&actor=operator:olga');
      expect(byKind.body.data.length).toBeGreaterThan(0);
      expect(byKind.body.data.every((r: any) => r.kind.startsWith('grant.') && r.actor === 'operator:olga')).toBe(true);

      const first = await bearer(broker, auditor, 'GET', '/v1/audit?limit=2');
      expect(first.body.has_more).toBe(true);
      const next = await bearer(broker, auditor, 'GET', `/v1/audit?limit=2&since=${first.body.next_since}`);
      expect(next.body.data[0].seq).toBe(first.body.data[1].seq + 1);
      expect((await bearer(broker, auditor, 'GET', '/v1/audit?since=-1')).status).toBe(422);
    });

    it('tokens never reach the logs or the audit trail', async () => {
      await bearer(broker, operator, 'GET', '/v1/audit');
      const audit = broker.deps.db.sqlite.prepare('SELECT detail FROM gov_activities').all() as { detail: string }[];
      for (const token of [operator, auditor]) {
        expect(broker.logs.join('')).not.toContain(token);
        expect(audit.some((r) => r.detail.includes(token))).toBe(false);
      }
    });
  });

  describe('broker token (a real CLI process on the same data dir)', () => {
    it('mints a token the running server accepts, and audits token.issued without the token', async () => {
      const env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' };
      const out = await runCli(['token', '--role', 'auditor', '--subject', 'carol', '--ttl', '8h'], env);
      expect(out.code, out.stderr).toBe(0);
      const token = out.stdout.trim();
      const res = await bearer(broker, token, 'GET', '/v1/audit?kind=token.issued');
      expect(res.status).toBe(200);
      const issued = res.body.data.at(-1);
      expect(issued).toMatchObject({ subject: 'auditor:carol', detail: { role: 'auditor', subject: 'carol' } });
      expect(Date.parse(issued.detail.expires_at) - Date.parse(issued.ts)).toBeGreaterThan(8 * 3600_000 - 2000);
      expect(JSON.stringify(res.body)).not.toContain(token);
      const bad = await runCli(['token', '--role', 'root', '--subject', 'carol'], env);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('');
    });
  });
});
