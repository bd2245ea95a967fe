/**
 * Host credentials: availability from the environment, GitHub App installation tokens narrowed to
 * one repository and the action's permissions, and tokens never leaving the broker.
 *
 * The App flow is checked against a small express app standing in for GitHub's two endpoints,
 * because the recordings cannot match a freshly signed JWT; how a token request obeys the call's
 * signal, against a plain HTTP server whose token endpoint can hold a request unanswered.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import express from 'express';
import { importSPKI, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { githubProviderFromEnv, githubSettingsFromEnv } from '../../../src/providers/github/index.js';
import { ProviderError, type Provider } from '../../../src/providers/contract.js';
import { ApiError } from '../../../src/platform/http/problem.js';
import { redactString } from '../../../src/platform/audit/redact.js';
import { tempDir } from '../../helpers/harness.js';
import { runAction, testContext } from './fixtures.js';

describe('availability', () => {
  it('is unavailable without a credential, and says which variables to set', () => {
    const p = githubProviderFromEnv({});
    expect(p.unavailableReason()).toMatch(/GITHUB_TOKEN.*GITHUB_APP_ID.*GITHUB_APP_PRIVATE_KEY_PATH.*GITHUB_APP_INSTALLATION_ID/);
  });

  it('answers 503 provider_unavailable from execute without a credential', async () => {
    const p = githubProviderFromEnv({});
    const err = await runAction(p, 'github.get_repo', { owner: 'acme', repo: 'api' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'provider_unavailable', status: 503 });
  });

  it('names the missing App variables when the App configuration is partial', () => {
    expect(githubSettingsFromEnv({ GITHUB_APP_ID: '1' }).unavailable).toBe(
      'GitHub App configuration is incomplete: GITHUB_APP_PRIVATE_KEY_PATH, GITHUB_APP_INSTALLATION_ID not set',
    );
  });

  it('reports an unreadable or non-PEM private key', () => {
    const dir = tempDir('gh-app-');
    const env = { GITHUB_APP_ID: '1', GITHUB_APP_INSTALLATION_ID: '2' };
    expect(githubSettingsFromEnv({ ...env, GITHUB_APP_PRIVATE_KEY_PATH: path.join(dir, 'missing.pem') }).unavailable).toBe(
      'GITHUB_APP_PRIVATE_KEY_PATH cannot be read: ENOENT',
    );
    fs.writeFileSync(path.join(dir, 'bad.pem'), 'not a key');
    expect(githubSettingsFromEnv({ ...env, GITHUB_APP_PRIVATE_KEY_PATH: path.join(dir, 'bad.pem') }).unavailable).toBe(
      'GITHUB_APP_PRIVATE_KEY_PATH is not a PEM private key',
    );
  });

  it('rejects a GITHUB_API_URL that is not http(s) and strips a trailing slash', () => {
    expect(githubSettingsFromEnv({ GITHUB_TOKEN: 'x'.repeat(40), GITHUB_API_URL: 'file:///etc' }).unavailable).toMatch(/GITHUB_API_URL/);
    expect(githubSettingsFromEnv({ GITHUB_TOKEN: 'x'.repeat(40), GITHUB_API_URL: 'https://ghe.example/api/v3/' }).baseUrl).toBe(
      'https://ghe.example/api/v3',
    );
  });

  it('registers GITHUB_TOKEN for redaction', () => {
    const token = 'plain-host-token-value-1234567890';
    githubSettingsFromEnv({ GITHUB_TOKEN: token });
    expect(redactString(`token ${token}`)).toBe('token [REDACTED]');
  });
});

describe('GitHub App installation tokens', () => {
  const APP_ID = '4242';
  const INSTALLATION = '77';
  const TOKEN = `ghs_${'A'.repeat(36)}`;
  let server: Server;
  let origin: string;
  let keyPath: string;
  let publicPem: string;
  const tokenRequests: { body: unknown; iss: unknown }[] = [];
  const apiAuth: string[] = [];

  beforeAll(async () => {
    const keys = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    publicPem = keys.publicKey;
    keyPath = path.join(tempDir('gh-app-'), 'app.pem');
    fs.writeFileSync(keyPath, keys.privateKey, { mode: 0o600 });

    const app = express();
    app.use(express.json());
    app.post(`/app/installations/${INSTALLATION}/access_tokens`, async (req, res) => {
      const jwt = String(req.headers.authorization).replace(/^bearer /i, '');
      const { payload } = await jwtVerify(jwt, await importSPKI(publicPem, 'RS256'));
      tokenRequests.push({ body: req.body, iss: payload.iss });
      res.status(201).json({
        token: TOKEN,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        permissions: req.body.permissions,
        repository_selection: 'selected',
        repositories: [{ id: 1, name: 'api', full_name: 'acme/api' }],
      });
    });
    app.get('/repos/acme/api', (req, res) => {
      apiAuth.push(String(req.headers.authorization));
      // A careless API echoing the credential: the broker must not pass it on.
      res.json({
        full_name: 'acme/api', description: `deployed with ${TOKEN}`, private: true, visibility: 'private', default_branch: 'main',
        archived: false, fork: false, topics: [], open_issues_count: 0, stargazers_count: 0, forks_count: 0,
        html_url: 'https://github.com/acme/api', pushed_at: null, updated_at: null,
      });
    });
    app.post('/repos/acme/api/issues', (req, res) => {
      apiAuth.push(String(req.headers.authorization));
      res.status(401).json({ message: `Bad credentials for ${TOKEN}`, documentation_url: 'https://docs.github.com/rest' });
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );

  const appProvider = () =>
    githubProviderFromEnv({
      GITHUB_APP_ID: APP_ID,
      GITHUB_APP_PRIVATE_KEY_PATH: keyPath,
      GITHUB_APP_INSTALLATION_ID: INSTALLATION,
      GITHUB_API_URL: origin,
      GITHUB_TOKEN: 'ignored-when-the-app-is-configured',
    });

  it('asks for a token narrowed to the repository and the action’s permissions, reuses it, and redacts it', async () => {
    const provider = appProvider();
    expect(provider.unavailableReason()).toBeNull();
    const first = (await runAction(provider, 'github.get_repo', { owner: 'acme', repo: 'api' })) as { description: string };
    await runAction(provider, 'github.get_repo', { owner: 'acme', repo: 'api' });

    expect(tokenRequests).toEqual([{ body: { repositories: ['api'], permissions: { metadata: 'read' } }, iss: APP_ID }]);
    expect(apiAuth).toEqual([`token ${TOKEN}`, `token ${TOKEN}`]);
    expect(first.description).toBe('deployed with [REDACTED]');
  });

  it('asks for a separate token with write permission for a write, and keeps it out of the error', async () => {
    const provider = appProvider();
    const err = await runAction(provider, 'github.create_issue', { owner: 'acme', repo: 'api', title: 'x' }).catch((e: unknown) => e);
    expect(tokenRequests.at(-1)).toEqual({ body: { repositories: ['api'], permissions: { metadata: 'read', issues: 'write' } }, iss: APP_ID });
    expect(err).toBeInstanceOf(ProviderError);
    const pe = err as ProviderError;
    expect(pe.providerStatus).toBe(401);
    expect(pe.providerCode).toBe('unauthorized');
    expect(JSON.stringify({ message: pe.message, details: pe.details })).not.toContain(TOKEN);
    expect(fs.readFileSync(keyPath, 'utf8')).not.toBe(redactString(fs.readFileSync(keyPath, 'utf8')));
  });
});

describe('GitHub App token requests and the call’s signal', () => {
  const INSTALLATION = '78';
  const TOKEN = `ghs_${'B'.repeat(36)}`;
  /** What the token endpoint does with each request, in order: answer, or hold it unanswered. */
  const plan: ('answer' | 'hang')[] = [];
  let tokenHits = 0;
  /** Resolves when a held token request's connection closes (the broker aborted it). */
  const heldClosed: Promise<void>[] = [];
  const apiAuth: string[] = [];
  let server: http.Server;
  let origin: string;
  let keyPath: string;

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    keyPath = path.join(tempDir('gh-app-signal-'), 'app.pem');
    fs.writeFileSync(keyPath, privateKey, { mode: 0o600 });
    // A plain server: the token endpoint answers or never does, as planned; any repository reads.
    server = http.createServer((req, res) => {
      req.resume();
      if (req.method === 'POST' && req.url === `/app/installations/${INSTALLATION}/access_tokens`) {
        tokenHits += 1;
        if ((plan.shift() ?? 'answer') === 'hang') {
          heldClosed.push(new Promise((resolve) => res.once('close', () => resolve())));
          return;
        }
        res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ token: TOKEN, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { metadata: 'read' }, repository_selection: 'selected' }));
        return;
      }
      const repo = /^\/repos\/acme\/([\w-]+)$/.exec(req.url ?? '')?.[1];
      if (req.method === 'GET' && repo) {
        apiAuth.push(String(req.headers.authorization));
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({
          full_name: `acme/${repo}`, description: null, private: true, visibility: 'private', default_branch: 'main', archived: false, fork: false, topics: [],
          open_issues_count: 0, stargazers_count: 0, forks_count: 0, html_url: `https://github.com/acme/${repo}`, pushed_at: null, updated_at: null,
        }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  beforeEach(() => {
    plan.length = 0;
    tokenHits = 0;
    heldClosed.length = 0;
    apiAuth.length = 0;
  });

  const appProvider = () =>
    githubProviderFromEnv({ GITHUB_APP_ID: '4242', GITHUB_APP_PRIVATE_KEY_PATH: keyPath, GITHUB_APP_INSTALLATION_ID: INSTALLATION, GITHUB_API_URL: origin });
  /** A signal that aborts after `ms` with its own reason. */
  const abortAfter = (ms: number) => {
    const ac = new AbortController();
    const reason = new Error(`call aborted after ${ms} ms`);
    setTimeout(() => ac.abort(reason), ms);
    return { signal: ac.signal, reason };
  };
  const getRepo = (provider: Provider, repo: string, signal?: AbortSignal) =>
    runAction(provider, 'github.get_repo', { owner: 'acme', repo }, testContext(signal));
  const settle = (p: Promise<unknown>) =>
    p.then(
      (value) => ({ value, error: undefined as unknown, at: performance.now() }),
      (error: unknown) => ({ value: undefined, error, at: performance.now() }),
    );
  /** Waits until the token endpoint has seen `n` requests. */
  const untilHits = async (n: number) => {
    while (tokenHits < n) await new Promise((r) => setTimeout(r, 5));
  };

  it('a token endpoint that never answers: the call rejects with its abort at its signal, and the token request is closed', async () => {
    plan.push('hang');
    const { signal, reason } = abortAfter(100);
    const started = performance.now();
    const out = await settle(getRepo(appProvider(), 'api1', signal));
    expect(out.error).toBe(reason);
    expect(out.at - started).toBeGreaterThanOrEqual(90);
    expect(out.at - started).toBeLessThan(2_000);
    expect(tokenHits).toBe(1);
    // The request itself was aborted (its connection closed), not just abandoned.
    await expect(Promise.race([heldClosed[0], new Promise((r) => setTimeout(() => r('still open'), 1_000))])).resolves.toBeUndefined();
    expect(apiAuth).toEqual([]);
  });

  it('a token is still cached across calls: two calls, one token request', async () => {
    const provider = appProvider();
    await getRepo(provider, 'api2', abortAfter(5_000).signal);
    await getRepo(provider, 'api2', abortAfter(5_000).signal);
    expect(tokenHits).toBe(1);
    expect(apiAuth).toEqual([`token ${TOKEN}`, `token ${TOKEN}`]);
  });

  it('a call that joined another call’s token request asks again when that call’s signal aborts it', async () => {
    plan.push('hang', 'answer');
    const provider = appProvider();
    const first = abortAfter(100);
    const a = settle(getRepo(provider, 'api3', first.signal));
    await untilHits(1);
    // Same repository and permissions while A's request is pending: @octokit/auth-app joins them.
    const b = settle(getRepo(provider, 'api3'));
    const [outA, outB] = await Promise.all([a, b]);
    expect(outA.error).toBe(first.reason);
    expect(outB.error).toBeUndefined();
    expect(outB.value).toMatchObject({ full_name: 'acme/api3' });
    expect(tokenHits).toBe(2);
    expect(apiAuth).toEqual([`token ${TOKEN}`]);
  });

  it('a call waiting on another call’s token request still stops at its own signal', async () => {
    plan.push('hang');
    const provider = appProvider();
    const other = new AbortController();
    const b = settle(getRepo(provider, 'api4', other.signal));
    await untilHits(1);
    const mine = abortAfter(100);
    const started = performance.now();
    const outA = await settle(getRepo(provider, 'api4', mine.signal));
    expect(outA.error).toBe(mine.reason);
    expect(outA.at - started).toBeLessThan(2_000);
    expect(tokenHits).toBe(1);
    other.abort(new Error('done'));
    expect((await b).error).toEqual(new Error('done'));
  });
});
