/**
 * All 20 GitHub actions end to end: RFC 9421-signed `POST /v1/ext/calls` through a running broker
 * (grants created through the real routes, L2+ calls coupled to a DOING task created through the
 * kernel routes, the L3 grant approved by two approvers' JWS) to @octokit/fixtures-server.
 *
 * One broker serves the whole file, as in production, so its `GITHUB_API_URL` is fixed when it
 * starts. It points at {@link startScenarioProxy}, a reverse proxy whose upstream each test switches
 * to a scenario it loads for itself: every test replays only its own recordings, must consume all
 * of them, and passes or fails alone, in any order. Refusals load none and must reach no upstream.
 */
import http from 'node:http';
import httpProxy from 'http-proxy';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/platform/audit/chain.js';
import { policiesWith, startBroker, type TestBroker } from '../../helpers/harness.js';
import { approveTwice, call, grant, taskIn } from '../../calls/helpers.js';
import { FIXTURE_TOKEN, ORG, startGitHubFixtures, type GitHubFixtures, type Scenario } from './fixtures.js';

/** A reverse proxy with a switchable upstream. */
interface ScenarioProxy {
  /** `http://127.0.0.1:<port>`: the broker's `GITHUB_API_URL`. */
  url: string;
  /** A loaded scenario's `url` (`<fixtures origin>/api.github.com/<id>`), or null: answer 502. */
  upstream: string | null;
  /** `METHOD /path` of every request received since the last reset. */
  received: string[];
  close(): Promise<void>;
}

/**
 * Forwards `METHOD /path?query` to `METHOD <upstream>/path?query` with `http-proxy` (headers,
 * `host` included, and body unchanged; the answer's status and headers unchanged): the recordings
 * match the method, path, body and headers such as `authorization` and `content-length`. Links in
 * answers (pagination's `link`, URLs in bodies) name the fixtures server itself with the
 * scenario's id in their path, so Octokit follows them there directly, past the proxy.
 */
async function startScenarioProxy(): Promise<ScenarioProxy> {
  const proxy: ScenarioProxy = {
    url: '',
    upstream: null,
    received: [],
    close: () =>
      new Promise<void>((resolve) => {
        forward.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const forward = httpProxy.createProxyServer({});
  const server = http.createServer((req, res) => {
    proxy.received.push(`${req.method} ${req.url}`);
    if (proxy.upstream === null) {
      res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"e2e proxy: this test loaded no scenario"}');
      return;
    }
    forward.web(req, res, { target: proxy.upstream }, (err) => res.destroy(err));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

let fx: GitHubFixtures;
let proxy: ScenarioProxy;
let sc: Scenario | null;
let broker: TestBroker;
let devTask: string;
let mainTask: string;

/** Loads a fresh copy of scenario `name` and makes it this test's GitHub. */
async function replay(name: string): Promise<void> {
  sc = await fx.load(name);
  proxy.upstream = sc.url;
}

/** Asserts that this test consumed its whole scenario. */
async function expectReplayed(): Promise<void> {
  expect(sc, 'replay(scenario) first').not.toBeNull();
  expect(await sc!.pending()).toEqual([]);
}

/** Asserts that this test sent no request to GitHub. */
function expectNoRequest(): void {
  expect(proxy.received).toEqual([]);
}

const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  fx = await startGitHubFixtures();
  proxy = await startScenarioProxy();
  // The host's environment, as `npm start` would see it: the broker builds its providers from it.
  for (const k of ['GITHUB_TOKEN', 'GITHUB_API_URL'] as const) saved[k] = process.env[k];
  process.env['GITHUB_TOKEN'] = FIXTURE_TOKEN;
  process.env['GITHUB_API_URL'] = proxy.url;
  // The actions themselves are under test here: without rate limits or quotas (this file makes
  // more L3 calls a minute, on the manual clock, than the default limits allow; test/limits/ covers
  // them) and without per-call approval (test/calls/per-call-approval.test.ts covers it).
  broker = await startBroker({ env: { BROKER_POLICIES_DIR: policiesWith({ 'limits.json': { rules: [] }, 'approvals.json': { per_call: {} } }) } });

  await grant(broker, { group: 'developer', provider: 'github', level: 2, resources: [`${ORG}/*`], ttl_s: 3600 });
  devTask = await taskIn(broker, 'DOING', 'developer');
  const l3 = await grant(broker, { group: 'main', provider: 'github', level: 3, resources: [`${ORG}/merge-pull`, `${ORG}/dispatch-workflow`], ttl_s: 3600 });
  await approveTwice(broker, l3);
  mainTask = await taskIn(broker, 'DOING', 'main');
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  expect(verifyChain(broker.deps.db).ok).toBe(true);
  await broker.stop();
  await proxy.close();
  await fx.close();
});

/** Where this test's log lines and audit rows begin. */
let mark = { logs: 0, seq: 0 };
const auditSince = (seq: number) => broker.deps.db.sqlite.prepare('SELECT detail FROM gov_activities WHERE seq > ?').all(seq) as { detail: string }[];
beforeEach(() => {
  sc = null;
  proxy.upstream = null;
  proxy.received = [];
  const { seq } = broker.deps.db.sqlite.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM gov_activities').get() as { seq: number };
  mark = { logs: broker.logs.length, seq };
});
afterEach(() => {
  // Every test: no token reached the log lines or audit rows it caused.
  expect(broker.logs.slice(mark.logs).join('')).not.toContain(FIXTURE_TOKEN);
  expect(auditSince(mark.seq).some((r) => r.detail.includes(FIXTURE_TOKEN))).toBe(false);
});

const dev = (action: string, params: Record<string, unknown>, task = false) =>
  call(broker, 'developer', { action: `github.${action}`, params, ...(task ? { task_id: devTask } : {}) });
const main = (action: string, params: Record<string, unknown>) => call(broker, 'main', { action: `github.${action}`, params, task_id: mainTask });

function ok(res: Awaited<ReturnType<typeof call>>): any {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.status).toBe('succeeded');
  return res.body.result;
}

describe('readiness', () => {
  it('/ready lists the GitHub provider as available', async () => {
    const ready = (await (await fetch(`${broker.url}/ready`)).json()) as { providers: Record<string, unknown> };
    expect(ready.providers['github']).toEqual({ available: true });
  });

  it('GET /v1/ext/capabilities lists the 20 actions, each at its level, as developer’s L2 grant allows them', async () => {
    const res = await broker.client('developer').get('/v1/ext/capabilities');
    expect(res.status).toBe(200);
    const github = (res.body.actions as { action: string; level: number; allowed: boolean; code: string | null; requires_task: boolean; resources: string[] | null }[]).filter(
      (a) => a.action.startsWith('github.'),
    );
    expect(github).toHaveLength(20);
    const seen = Object.fromEntries(github.map((a) => [a.action, [a.level, a.allowed, a.requires_task]]));
    expect(seen).toMatchObject({
      'github.list_repos': [1, true, false],
      'github.list_branches': [1, true, false],
      'github.list_pull_comments': [1, true, false],
      'github.close_issue': [2, true, true],
      'github.merge_pull': [3, false, true],
    });
    expect(github.find((a) => a.action === 'github.list_repos')!.resources).toEqual([`${ORG}/*`]);
    expectNoRequest();
  });
});

describe('L1 reads (developer, L2 grant on octokit-fixture-org/*)', () => {
  it('get_repo', async () => {
    await replay('get-repository');
    const r = ok(await dev('get_repo', { owner: ORG, repo: 'hello-world' }));
    expect(r).toMatchObject({ full_name: `${ORG}/hello-world`, default_branch: 'master' });
    expect(r).not.toHaveProperty('owner');
    await expectReplayed();
  });

  it('get_content (directory, then file)', async () => {
    await replay('get-content');
    expect(ok(await dev('get_content', { owner: ORG, repo: 'hello-world' })).items).toHaveLength(1);
    expect(ok(await dev('get_content', { owner: ORG, repo: 'hello-world', path: 'README.md' })).content).toBe('# hello-world');
    await expectReplayed();
  });

  it('list_issues', async () => {
    await replay('paginate-issues');
    expect(ok(await dev('list_issues', { owner: ORG, repo: 'paginate-issues', per_page: 3 })).items).toHaveLength(13);
    await expectReplayed();
  });

  it('get_issue', async () => {
    await replay('get-issue');
    expect(ok(await dev('get_issue', { owner: ORG, repo: 'get-issue', issue_number: 1 }))).toMatchObject({ labels: ['bug'], milestone: 'v1.0' });
    await expectReplayed();
  });

  it('list_pulls', async () => {
    await replay('list-pulls');
    expect(ok(await dev('list_pulls', { owner: ORG, repo: 'list-pulls', state: 'open', per_page: 1 })).items).toHaveLength(2);
    await expectReplayed();
  });

  it('get_pull', async () => {
    await replay('get-pull');
    expect(ok(await dev('get_pull', { owner: ORG, repo: 'get-pull', pull_number: 1 })).head_status.state).toBe('success');
    await expectReplayed();
  });

  it('search_issues (the repo: qualifier is forced)', async () => {
    await replay('search-issues');
    const r = ok(await dev('search_issues', { owner: ORG, repo: 'search-issues', query: 'sesame repo:elsewhere/secret' }));
    expect(r.query).toBe(`sesame repo:${ORG}/search-issues`);
    expect(r.items).toHaveLength(2);
    await expectReplayed();
  });

  it('list_repos of the granted owner (resource octokit-fixture-org/*): only that owner’s repositories', async () => {
    await replay('list-repos');
    const r = ok(await dev('list_repos', { owner: ORG, per_page: 2 }));
    expect(r.items.map((x: { full_name: string }) => x.full_name)).toEqual([`${ORG}/hello-world`, `${ORG}/list-repos`]);
    expect(JSON.stringify(r)).not.toContain('secret-plans');
    await expectReplayed();
  });

  it('list_branches', async () => {
    await replay('list-branches');
    const r = ok(await dev('list_branches', { owner: ORG, repo: 'list-branches', per_page: 2 }));
    expect(r.items.map((b: { name: string; protected: boolean }) => [b.name, b.protected])).toEqual([
      ['feature/retry', false],
      ['main', true],
      ['release/v1', true],
    ]);
    await expectReplayed();
  });

  it('list_branches of a missing repository answers 502 provider_error with GitHub’s 404', async () => {
    await replay('list-branches-not-found');
    const res = await dev('list_branches', { owner: ORG, repo: 'missing' });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'provider_error', provider_status: 404, provider_code: 'not_found', details: { message: 'Not Found' } });
    await expectReplayed();
  });

  it('list_pull_comments', async () => {
    await replay('list-pull-comments');
    const r = ok(await dev('list_pull_comments', { owner: ORG, repo: 'list-pull-comments', pull_number: 1, per_page: 2 }));
    expect(r.items.map((c: { kind: string; id: number }) => `${c.kind}:${c.id}`)).toEqual(['issue:1100', 'review:1001', 'issue:1102', 'review:1003', 'review:1004', 'issue:1105']);
    await expectReplayed();
  });

  it('list_workflow_runs', async () => {
    await replay('list-workflow-runs');
    expect(ok(await dev('list_workflow_runs', { owner: ORG, repo: 'list-workflow-runs', branch: 'main', per_page: 2 })).total_count).toBe(3);
    await expectReplayed();
  });
});

describe('refusals before any HTTP request', () => {
  it.each([
    ['a ../ path', 'get_content', { owner: ORG, repo: 'hello-world', path: '../../etc/passwd' }, ['params', 'path']],
    ['put_file to main', 'put_file', { owner: ORG, repo: 'create-file', path: 'a.txt', branch: 'main', content: 'x', message: 'm' }, ['params', 'branch']],
    ['an owner with /', 'get_repo', { owner: `${ORG}/other`, repo: 'hello-world' }, ['params', 'owner']],
  ])('%s answers 422 validation_failed', async (_name, action, params, issuePath) => {
    const res = await dev(action, params, true);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.issues.map((i: { path: string[] }) => i.path)).toContainEqual(issuePath);
    expectNoRequest();
  });

  it('a repository outside the grant answers 403 resource_out_of_scope', async () => {
    const res = await dev('get_repo', { owner: 'someone-else', repo: 'hello-world' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('resource_out_of_scope');
    expectNoRequest();
  });

  it('list_repos without an owner (resource *) is outside a grant on octokit-fixture-org/*: 403 resource_out_of_scope', async () => {
    const res = await dev('list_repos', {});
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('resource_out_of_scope');
    expect(res.body.detail).toContain('* is outside the resources of grant');
    expectNoRequest();
  });

  it('an L2 write without a task answers 403 task_required', async () => {
    const res = await dev('create_issue', { owner: ORG, repo: 'add-labels-to-issue', title: 'Issue without a label' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('task_required');
    expectNoRequest();
  });

  it('an L3 action on an L2 grant answers 403 insufficient_level', async () => {
    const res = await dev('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1 }, true);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('insufficient_level');
    expectNoRequest();
  });
});

describe('L2 writes (developer, coupled to a DOING task)', () => {
  it('create_issue then add_labels', async () => {
    await replay('add-labels-to-issue');
    expect(ok(await dev('create_issue', { owner: ORG, repo: 'add-labels-to-issue', title: 'Issue without a label' }, true)).number).toBe(1);
    expect(ok(await dev('add_labels', { owner: ORG, repo: 'add-labels-to-issue', issue_number: 1, labels: ['Foo', 'bAr', 'baZ'] }, true)).labels).toEqual([
      'Foo', 'bAr', 'baZ',
    ]);
    await expectReplayed();
  });

  it('comment_issue', async () => {
    await replay('comment-issue');
    expect(ok(await dev('comment_issue', { owner: ORG, repo: 'comment-issue', issue_number: 1, body: 'Reproduced on main; fix in progress.' }, true)).id).toBe(1000);
    await expectReplayed();
  });

  it('create_branch', async () => {
    await replay('create-branch');
    expect(ok(await dev('create_branch', { owner: ORG, repo: 'git-refs', branch: 'test' }, true)).ref).toBe('refs/heads/test');
    await expectReplayed();
  });

  it('put_file', async () => {
    await replay('put-file');
    const r = ok(await dev('put_file', { owner: ORG, repo: 'create-file', path: 'test.txt', branch: 'feature', content: 'Test content', message: 'create test.txt' }, true));
    expect(r.sha).toBe('3f3f005b29247e51a4f4d6b8ce07b67646cd6074');
    await expectReplayed();
  });

  it('create_pull', async () => {
    await replay('create-pull');
    const r = ok(
      await dev('create_pull', { owner: ORG, repo: 'create-pull', title: 'Add retry to the fetcher', head: 'feature', base: 'main', body: 'Retries twice with backoff.' }, true),
    );
    expect(r.number).toBe(1);
    await expectReplayed();
  });

  it('close_issue writes the new state; on an issue already closed as asked it writes nothing', async () => {
    await replay('close-issue');
    expect(ok(await dev('close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1, state_reason: 'not_planned' }, true))).toMatchObject({
      state: 'closed',
      state_reason: 'not_planned',
      changed: true,
    });
    await expectReplayed();
    await replay('close-issue-already-closed');
    expect(ok(await dev('close_issue', { owner: ORG, repo: 'close-issue', issue_number: 1 }, true))).toMatchObject({ state: 'closed', state_reason: 'completed', changed: false });
    await expectReplayed();
  });

  it('close_issue of a missing issue answers 502 provider_error with GitHub’s 404', async () => {
    await replay('close-issue-not-found');
    const res = await dev('close_issue', { owner: ORG, repo: 'close-issue', issue_number: 404 }, true);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'provider_error', provider_status: 404, provider_code: 'not_found' });
    await expectReplayed();
  });

  it('close_issue refuses a pull request with 412 precondition_failed', async () => {
    await replay('close-issue-pull-request');
    const res = await dev('close_issue', { owner: ORG, repo: 'close-issue', issue_number: 2 }, true);
    expect(res.status).toBe(412);
    expect(res.body.code).toBe('precondition_failed');
    await expectReplayed();
  });

  it('a GitHub 422 answers 502 provider_error with GitHub’s field errors', async () => {
    await replay('errors-add-labels');
    const res = await dev('add_labels', { owner: ORG, repo: 'errors', issue_number: 1, labels: ['foo'] }, true);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({
      code: 'provider_error',
      provider_status: 422,
      provider_code: 'validation_failed',
      details: { message: 'Validation Failed', errors: [{ resource: 'Label', code: 'invalid', field: 'color' }] },
    });
    expect(JSON.stringify(res.body)).not.toContain(FIXTURE_TOKEN);
    await expectReplayed();
  });
});

describe('L3 production (main, grant approved by two approvers, coupled to a DOING task)', () => {
  it('merge_pull', async () => {
    await replay('merge-pull');
    expect(ok(await main('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1, merge_method: 'squash' }))).toMatchObject({ merged: true });
    await expectReplayed();
  });

  it.each([
    ['merge-pull-not-mergeable', ['mergeable']],
    ['merge-pull-closed', ['open', 'mergeable']],
    ['merge-pull-unprotected', ['base_protected']],
    ['merge-pull-checks-failing', ['checks']],
    ['merge-pull-statuses-failing', ['statuses']],
  ])('merge_pull refused with 412 precondition_failed (%s)', async (name, unmet) => {
    await replay(name);
    const res = await main('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1 });
    expect(res.status).toBe(412);
    expect(res.body.code).toBe('precondition_failed');
    expect(res.body.unmet.map((u: { check: string }) => u.check)).toEqual(unmet);
    await expectReplayed();
  });

  it('dispatch_workflow', async () => {
    await replay('dispatch-workflow');
    const r = ok(await main('dispatch_workflow', { owner: ORG, repo: 'dispatch-workflow', workflow_id: 'deploy.yml', ref: 'main', inputs: { environment: 'production', dry_run: false } }));
    expect(r).toEqual({ dispatched: true, workflow: 'deploy.yml', ref: 'main' });
    await expectReplayed();
  });
});

describe('secrets', () => {
  it('a call writes log lines and audit rows, and the token reaches none of them (after each test, too)', async () => {
    // On its own, so the token check afterEach runs is known to examine something.
    await replay('errors-add-labels');
    expect((await dev('add_labels', { owner: ORG, repo: 'errors', issue_number: 1, labels: ['foo'] }, true)).status).toBe(502);
    await expectReplayed();
    expect(broker.logs.slice(mark.logs).join('')).not.toHaveLength(0);
    const rows = auditSince(mark.seq);
    expect(rows.length).toBeGreaterThan(0);
    expect(broker.logs.slice(mark.logs).join('')).not.toContain(FIXTURE_TOKEN);
    expect(rows.some((r) => r.detail.includes(FIXTURE_TOKEN))).toBe(false);
  });
});
