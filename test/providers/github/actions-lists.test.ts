/**
 * `github.list_repos`, `github.list_branches`, `github.list_pull_comments` and
 * `github.close_issue`: each action's `execute` with real Octokit against @octokit/fixtures-server
 * replaying the recorded-format scenarios of test/fixtures/github/build-extra.ts. Every scenario
 * must be fully consumed: no missing and no unexpected request.
 *
 * `list_repos` with a GitHub App runs the real App flow (`@octokit/auth-app` signs a JWT and asks
 * for an installation token) against a stand-in for the token endpoint that answers with the
 * recordings' token and forwards every other request to the scenario: the token request cannot be
 * recorded (its JWT is signed afresh), the listing can.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import httpProxy from 'http-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, type Provider } from '../../../src/providers/contract.js';
import { ApiError } from '../../../src/platform/http/problem.js';
import { githubProviderFromEnv } from '../../../src/providers/github/index.js';
import { tempDir } from '../../helpers/harness.js';
import { FIXTURE_TOKEN, ORG, runAction, startGitHubFixtures, testContext, type GitHubFixtures, type Scenario } from './fixtures.js';

let fx: GitHubFixtures;
beforeAll(async () => {
  fx = await startGitHubFixtures();
});
afterAll(() => fx.close());

/** Loads `scenario` and a token provider pointed at it; `run` may pass the grant's resources. */
async function scenario(name: string): Promise<{ sc: Scenario; run: (id: string, params: unknown, grantResources?: string[] | null) => Promise<any> }> {
  const sc = await fx.load(name);
  const provider: Provider = githubProviderFromEnv({ GITHUB_TOKEN: FIXTURE_TOKEN, GITHUB_API_URL: sc.url });
  return { sc, run: (id, params, grantResources = null) => runAction(provider, id, params, { ...testContext(), grantResources }) };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

const html = (p: string) => expect.stringMatching(new RegExp(`/github\\.com/[a-z0-9]+/${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
const sha = (n: number) => String(n).padStart(40, '0');
const names = (out: { items: { full_name: string }[] }) => out.items.map((r) => r.full_name);

describe('github.list_repos with a token (GET /user/repos)', () => {
  it('pages through every repository the token reaches when the grant covers any resource', async () => {
    const { sc, run } = await scenario('list-repos');
    const out = await run('github.list_repos', { per_page: 2 });
    expect(names(out)).toEqual([`${ORG}/hello-world`, `${ORG}/list-repos`, 'octokit-fixture-user-a/dotfiles', 'other-org/secret-plans']);
    expect(out.truncated).toBe(false);
    expect(out.items[0]).toEqual({
      full_name: `${ORG}/hello-world`,
      owner: ORG,
      name: 'hello-world',
      description: 'My first repository on GitHub!',
      private: false,
      visibility: 'public',
      default_branch: 'main',
      archived: false,
      fork: false,
      html_url: html(`${ORG}/hello-world`),
      pushed_at: '2017-10-10T16:00:00Z',
    });
    expect(out.items[2]).toMatchObject({ owner: 'octokit-fixture-user-a', private: true, visibility: 'private', description: null });
    expect(await sc.pending()).toEqual([]);
  });

  it('keeps only the owner asked for, and only what the grant’s resources cover', async () => {
    const { sc, run } = await scenario('list-repos');
    expect(names(await run('github.list_repos', { owner: ORG, per_page: 2 }, [`${ORG}/*`]))).toEqual([`${ORG}/hello-world`, `${ORG}/list-repos`]);
    expect(await sc.pending()).toEqual([]);

    // Owners compare case-insensitively (GitHub logins do); grant patterns as the decision does.
    const again = await scenario('list-repos');
    expect(names(await again.run('github.list_repos', { owner: 'Octokit-Fixture-Org', per_page: 2 }))).toEqual([`${ORG}/hello-world`, `${ORG}/list-repos`]);
    expect(await again.sc.pending()).toEqual([]);

    const mixed = await scenario('list-repos');
    const out = await mixed.run('github.list_repos', { per_page: 2 }, [`${ORG}/hello-*`, 'octokit-fixture-user-a/*', 'other-org/secret']);
    expect(names(out)).toEqual([`${ORG}/hello-world`, 'octokit-fixture-user-a/dotfiles']);
    expect(await mixed.sc.pending()).toEqual([]);
  });

  it('stops at its limit and says the list was truncated', async () => {
    const { sc, run } = await scenario('list-repos');
    const out = await run('github.list_repos', { per_page: 2, limit: 3 });
    expect(names(out)).toHaveLength(3);
    expect(out.truncated).toBe(true);
    expect(await sc.pending()).toEqual([]);
  });

  it('an installation token as GITHUB_TOKEN: GitHub’s 403 surfaces as ProviderError forbidden', async () => {
    const { sc, run } = await scenario('list-repos-forbidden');
    const err = await rejection(run('github.list_repos', { owner: ORG }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ providerStatus: 403, providerCode: 'forbidden', message: 'GitHub answered 403: Resource not accessible by integration' });
    expect(await sc.pending()).toEqual([]);
  });
});

describe('github.list_repos with a GitHub App (GET /installation/repositories)', () => {
  const INSTALLATION = '91';
  let standIn: http.Server;
  let origin: string;
  let keyPath: string;
  let upstream: string | null = null;
  const tokenRequests: unknown[] = [];
  const forward = httpProxy.createProxyServer({});

  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    keyPath = path.join(tempDir('gh-app-list-'), 'app.pem');
    fs.writeFileSync(keyPath, privateKey, { mode: 0o600 });
    standIn = http.createServer((req, res) => {
      if (req.method === 'POST' && req.url === `/app/installations/${INSTALLATION}/access_tokens`) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          tokenRequests.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify({ token: FIXTURE_TOKEN, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { metadata: 'read' }, repository_selection: 'selected' }));
        });
        return;
      }
      if (upstream === null) {
        res.writeHead(502).end();
        return;
      }
      forward.web(req, res, { target: upstream }, (err) => res.destroy(err));
    });
    await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        forward.close();
        standIn.closeAllConnections();
        standIn.close(() => resolve());
      }),
  );

  it('asks for an installation token over every repository with metadata:read only, and lists the installation’s repositories', async () => {
    const sc = await fx.load('list-repos-installation');
    upstream = sc.url;
    const provider = githubProviderFromEnv({ GITHUB_APP_ID: '4242', GITHUB_APP_PRIVATE_KEY_PATH: keyPath, GITHUB_APP_INSTALLATION_ID: INSTALLATION, GITHUB_API_URL: origin });
    const out = (await runAction(provider, 'github.list_repos', { owner: ORG, per_page: 2 }, { ...testContext(), grantResources: [`${ORG}/*`] })) as {
      items: { full_name: string; private: boolean }[];
      truncated: boolean;
    };
    expect(out.items.map((r) => [r.full_name, r.private])).toEqual([
      [`${ORG}/hello-world`, false],
      [`${ORG}/list-repos`, false],
      [`${ORG}/private-infra`, true],
    ]);
    expect(out.truncated).toBe(false);
    // Not narrowed to a repository (it lists them), but to the one permission listing needs.
    expect(tokenRequests).toEqual([{ permissions: { metadata: 'read' } }]);
    expect(await sc.pending()).toEqual([]);
  });
});

describe('github.list_branches', () => {
  it('pages through branches with the commit each points at and its protection', async () => {
    const { sc, run } = await scenario('list-branches');
    const out = await run('github.list_branches', { owner: ORG, repo: 'list-branches', per_page: 2 });
    expect(out).toEqual({
      items: [
        { name: 'feature/retry', sha: sha(2), protected: false },
        { name: 'main', sha: sha(4), protected: true },
        { name: 'release/v1', sha: sha(6), protected: true },
      ],
      truncated: false,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('passes the protected filter to GitHub', async () => {
    const { sc, run } = await scenario('list-branches-protected');
    const out = await run('github.list_branches', { owner: ORG, repo: 'list-branches', protected: true });
    expect(out.items.map((b: { name: string }) => b.name)).toEqual(['main', 'release/v1']);
    expect(await sc.pending()).toEqual([]);
  });

  it('a missing repository: GitHub’s 404 surfaces as ProviderError not_found', async () => {
    const { sc, run } = await scenario('list-branches-not-found');
    const err = await rejection(run('github.list_branches', { owner: ORG, repo: 'missing' }));
    expect(err).toBeInstanceOf(ProviderError);
    const pe = err as ProviderError;
    expect(pe).toMatchObject({ providerStatus: 404, providerCode: 'not_found', message: 'GitHub answered 404: Not Found' });
    expect(pe.details).toMatchObject({ message: 'Not Found', documentation_url: expect.stringMatching(/\/rest\/branches\/branches#list-branches$/) });
    expect(await sc.pending()).toEqual([]);
  });
});

describe('github.list_pull_comments', () => {
  it('merges conversation and review comments oldest first, each marked with its kind', async () => {
    const { sc, run } = await scenario('list-pull-comments');
    const out = await run('github.list_pull_comments', { owner: ORG, repo: 'list-pull-comments', pull_number: 1, per_page: 2 });
    expect(out.truncated).toBe(false);
    expect(out.items.map((c: { kind: string; id: number; created_at: string }) => [c.kind, c.id, c.created_at.slice(11, 16)])).toEqual([
      ['issue', 1100, '16:00'],
      ['review', 1001, '16:10'],
      ['issue', 1102, '16:20'],
      ['review', 1003, '16:30'],
      ['review', 1004, '16:40'],
      ['issue', 1105, '16:50'],
    ]);
    expect(out.items[0]).toEqual({
      kind: 'issue',
      id: 1100,
      user: 'octokit-fixture-user-b',
      body: 'Thanks! CI is green; one question inline about the backoff.',
      created_at: '2017-10-10T16:00:00Z',
      updated_at: '2017-10-10T16:00:00Z',
      html_url: html(`${ORG}/list-pull-comments/pull/1#issuecomment-1100`),
      path: null,
      line: null,
      commit_id: null,
      in_reply_to_id: null,
    });
    expect(out.items[3]).toEqual({
      kind: 'review',
      id: 1003,
      user: 'octokit-fixture-user-a',
      body: 'Capped at 400 ms.',
      created_at: '2017-10-10T16:30:00Z',
      updated_at: '2017-10-10T16:30:00Z',
      html_url: html(`${ORG}/list-pull-comments/pull/1#discussion_r1003`),
      path: 'src/fetch.ts',
      line: 12,
      commit_id: sha(2),
      in_reply_to_id: 1001,
    });
    // An outdated review comment has no line on the current diff.
    expect(out.items[4]).toMatchObject({ kind: 'review', path: 'src/fetch.test.ts', line: null });
    expect(await sc.pending()).toEqual([]);
  });

  it('stops at its limit without reading pages the limit does not need', async () => {
    // The scenario has no second page of review comments: asking for it would fail the call.
    const { sc, run } = await scenario('list-pull-comments-limit');
    const out = await run('github.list_pull_comments', { owner: ORG, repo: 'list-pull-comments', pull_number: 1, per_page: 2, limit: 3 });
    expect(out.items.map((c: { id: number }) => c.id)).toEqual([1100, 1001, 1102]);
    expect(out.truncated).toBe(true);
    expect(await sc.pending()).toEqual([]);
  });
});

describe('github.close_issue', () => {
  it('closes an open issue with the reason given', async () => {
    const { sc, run } = await scenario('close-issue');
    const out = await run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1, state_reason: 'not_planned' });
    expect(out).toEqual({
      number: 1,
      state: 'closed',
      state_reason: 'not_planned',
      closed_at: '2017-10-10T16:00:00Z',
      html_url: html(`${ORG}/close-issue/issues/1`),
      changed: true,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('closing an issue already closed as completed answers its state and writes nothing', async () => {
    // The scenario holds the read only: a PATCH would find no recording and fail the call.
    const { sc, run } = await scenario('close-issue-already-closed');
    const out = await run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1 });
    expect(out).toMatchObject({ state: 'closed', state_reason: 'completed', changed: false });
    expect(await sc.pending()).toEqual([]);
  });

  it('closing a closed issue with another reason changes the reason', async () => {
    const { sc, run } = await scenario('close-issue-reason');
    expect(await run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1, state: 'closed', state_reason: 'not_planned' })).toMatchObject({
      state: 'closed',
      state_reason: 'not_planned',
      changed: true,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('reopens a closed issue as reopened', async () => {
    const { sc, run } = await scenario('close-issue-reopen');
    expect(await run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1, state: 'open' })).toMatchObject({
      state: 'open',
      state_reason: 'reopened',
      closed_at: null,
      changed: true,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('refuses a pull request with 412 after reading it, and writes nothing', async () => {
    const { sc, run } = await scenario('close-issue-pull-request');
    const err = await rejection(run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 2 }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'precondition_failed', status: 412 });
    expect((err as ApiError).detail).toContain('is a pull request');
    expect(await sc.pending()).toEqual([]);
  });

  it('a missing issue: GitHub’s 404 surfaces as ProviderError not_found', async () => {
    const { sc, run } = await scenario('close-issue-not-found');
    const err = await rejection(run('github.close_issue', { owner: ORG, repo: 'close-issue', issue_number: 404 }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ providerStatus: 404, providerCode: 'not_found' });
    expect(await sc.pending()).toEqual([]);
  });
});
