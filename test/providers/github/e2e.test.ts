/**
 * All 16 GitHub actions end to end: RFC 9421-signed `POST /v1/ext/calls` through a running broker
 * (grants created through the real routes, L2+ calls coupled to a DOING task created through the
 * kernel routes, the L3 grant approved by two approvers' JWS) to @octokit/fixtures-server.
 *
 * One broker serves the whole file, as in production, so its `GITHUB_API_URL` points at one
 * scenario: the concatenation of the per-action scenarios in the order the tests below run. After
 * each test, exactly that test's interactions must have been consumed; refusals consume none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/audit/trail.js';
import { startBroker, type TestBroker } from '../../helpers/harness.js';
import { approveTwice, call, grant, taskIn } from '../../calls/helpers.js';
import { allScenarios, FIXTURE_TOKEN, ORG, startGitHubFixtures, type GitHubFixtures, type Scenario } from './fixtures.js';

/** The scenarios the tests consume, in test order. */
const ORDER = [
  'get-repository', 'get-content', 'paginate-issues', 'get-issue', 'list-pulls', 'get-pull', 'search-issues', 'list-workflow-runs',
  'add-labels-to-issue', 'comment-issue', 'create-branch', 'put-file', 'create-pull', 'errors-add-labels',
  'merge-pull', 'merge-pull-not-mergeable', 'merge-pull-closed', 'merge-pull-unprotected', 'merge-pull-checks-failing', 'merge-pull-statuses-failing',
  'dispatch-workflow',
];
const scenarios = allScenarios();
const combined = ORDER.flatMap((name) => scenarios[name]!);

let fx: GitHubFixtures;
let sc: Scenario;
let broker: TestBroker;
let devTask: string;
let mainTask: string;
let consumed = 0;

/** Asserts that exactly the interactions of `names` were consumed since the last check. */
async function expectConsumed(...names: string[]): Promise<void> {
  consumed += names.reduce((n, name) => n + scenarios[name]!.length, 0);
  expect(await sc.pending()).toHaveLength(combined.length - consumed);
}

const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  fx = await startGitHubFixtures({ 'broker-e2e': combined });
  sc = await fx.load('broker-e2e');
  // The host's environment, as `npm start` would see it: the broker builds its providers from it.
  for (const k of ['GITHUB_TOKEN', 'GITHUB_API_URL'] as const) saved[k] = process.env[k];
  process.env['GITHUB_TOKEN'] = FIXTURE_TOKEN;
  process.env['GITHUB_API_URL'] = sc.url;
  broker = await startBroker();

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
  await fx.close();
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
});

describe('L1 reads (developer, L2 grant on octokit-fixture-org/*)', () => {
  it('get_repo', async () => {
    const r = ok(await dev('get_repo', { owner: ORG, repo: 'hello-world' }));
    expect(r).toMatchObject({ full_name: `${ORG}/hello-world`, default_branch: 'master' });
    expect(r).not.toHaveProperty('owner');
    await expectConsumed('get-repository');
  });

  it('get_content (directory, then file)', async () => {
    expect(ok(await dev('get_content', { owner: ORG, repo: 'hello-world' })).items).toHaveLength(1);
    expect(ok(await dev('get_content', { owner: ORG, repo: 'hello-world', path: 'README.md' })).content).toBe('# hello-world');
    await expectConsumed('get-content');
  });

  it('list_issues', async () => {
    expect(ok(await dev('list_issues', { owner: ORG, repo: 'paginate-issues', per_page: 3 })).items).toHaveLength(13);
    await expectConsumed('paginate-issues');
  });

  it('get_issue', async () => {
    expect(ok(await dev('get_issue', { owner: ORG, repo: 'get-issue', issue_number: 1 }))).toMatchObject({ labels: ['bug'], milestone: 'v1.0' });
    await expectConsumed('get-issue');
  });

  it('list_pulls', async () => {
    expect(ok(await dev('list_pulls', { owner: ORG, repo: 'list-pulls', state: 'open', per_page: 1 })).items).toHaveLength(2);
    await expectConsumed('list-pulls');
  });

  it('get_pull', async () => {
    expect(ok(await dev('get_pull', { owner: ORG, repo: 'get-pull', pull_number: 1 })).head_status.state).toBe('success');
    await expectConsumed('get-pull');
  });

  it('search_issues (the repo: qualifier is forced)', async () => {
    const r = ok(await dev('search_issues', { owner: ORG, repo: 'search-issues', query: 'sesame repo:elsewhere/secret' }));
    expect(r.query).toBe(`sesame repo:${ORG}/search-issues`);
    expect(r.items).toHaveLength(2);
    await expectConsumed('search-issues');
  });

  it('list_workflow_runs', async () => {
    expect(ok(await dev('list_workflow_runs', { owner: ORG, repo: 'list-workflow-runs', branch: 'main', per_page: 2 })).total_count).toBe(3);
    await expectConsumed('list-workflow-runs');
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
    await expectConsumed();
  });

  it('a repository outside the grant answers 403 resource_out_of_scope', async () => {
    const res = await dev('get_repo', { owner: 'someone-else', repo: 'hello-world' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('resource_out_of_scope');
    await expectConsumed();
  });

  it('an L2 write without a task answers 403 task_required', async () => {
    const res = await dev('create_issue', { owner: ORG, repo: 'add-labels-to-issue', title: 'Issue without a label' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('task_required');
    await expectConsumed();
  });

  it('an L3 action on an L2 grant answers 403 insufficient_level', async () => {
    const res = await dev('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1 }, true);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('insufficient_level');
    await expectConsumed();
  });
});

describe('L2 writes (developer, coupled to a DOING task)', () => {
  it('create_issue then add_labels', async () => {
    expect(ok(await dev('create_issue', { owner: ORG, repo: 'add-labels-to-issue', title: 'Issue without a label' }, true)).number).toBe(1);
    expect(ok(await dev('add_labels', { owner: ORG, repo: 'add-labels-to-issue', issue_number: 1, labels: ['Foo', 'bAr', 'baZ'] }, true)).labels).toEqual([
      'Foo', 'bAr', 'baZ',
    ]);
    await expectConsumed('add-labels-to-issue');
  });

  it('comment_issue', async () => {
    expect(ok(await dev('comment_issue', { owner: ORG, repo: 'comment-issue', issue_number: 1, body: 'Reproduced on main; fix in progress.' }, true)).id).toBe(1000);
    await expectConsumed('comment-issue');
  });

  it('create_branch', async () => {
    expect(ok(await dev('create_branch', { owner: ORG, repo: 'git-refs', branch: 'test' }, true)).ref).toBe('refs/heads/test');
    await expectConsumed('create-branch');
  });

  it('put_file', async () => {
    const r = ok(await dev('put_file', { owner: ORG, repo: 'create-file', path: 'test.txt', branch: 'feature', content: 'Test content', message: 'create test.txt' }, true));
    expect(r.sha).toBe('3f3f005b29247e51a4f4d6b8ce07b67646cd6074');
    await expectConsumed('put-file');
  });

  it('create_pull', async () => {
    const r = ok(
      await dev('create_pull', { owner: ORG, repo: 'create-pull', title: 'Add retry to the fetcher', head: 'feature', base: 'main', body: 'Retries twice with backoff.' }, true),
    );
    expect(r.number).toBe(1);
    await expectConsumed('create-pull');
  });

  it('a GitHub 422 answers 502 provider_error with GitHub’s field errors', async () => {
    const res = await dev('add_labels', { owner: ORG, repo: 'errors', issue_number: 1, labels: ['foo'] }, true);
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({
      code: 'provider_error',
      provider_status: 422,
      provider_code: 'validation_failed',
      details: { message: 'Validation Failed', errors: [{ resource: 'Label', code: 'invalid', field: 'color' }] },
    });
    expect(JSON.stringify(res.body)).not.toContain(FIXTURE_TOKEN);
    await expectConsumed('errors-add-labels');
  });
});

describe('L3 production (main, grant approved by two approvers, coupled to a DOING task)', () => {
  it('merge_pull', async () => {
    expect(ok(await main('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1, merge_method: 'squash' }))).toMatchObject({ merged: true });
    await expectConsumed('merge-pull');
  });

  it.each([
    ['merge-pull-not-mergeable', ['mergeable']],
    ['merge-pull-closed', ['open', 'mergeable']],
    ['merge-pull-unprotected', ['base_protected']],
    ['merge-pull-checks-failing', ['checks']],
    ['merge-pull-statuses-failing', ['statuses']],
  ])('merge_pull refused with 412 precondition_failed (%s)', async (name, unmet) => {
    const res = await main('merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1 });
    expect(res.status).toBe(412);
    expect(res.body.code).toBe('precondition_failed');
    expect(res.body.unmet.map((u: { check: string }) => u.check)).toEqual(unmet);
    await expectConsumed(name);
  });

  it('dispatch_workflow', async () => {
    const r = ok(await main('dispatch_workflow', { owner: ORG, repo: 'dispatch-workflow', workflow_id: 'deploy.yml', ref: 'main', inputs: { environment: 'production', dry_run: false } }));
    expect(r).toEqual({ dispatched: true, workflow: 'deploy.yml', ref: 'main' });
    await expectConsumed('dispatch-workflow');
  });

  it('the whole scenario was consumed, and no token reached a log line or an audit row', async () => {
    expect(await sc.pending()).toEqual([]);
    expect(broker.logs.join('')).not.toContain(FIXTURE_TOKEN);
    const rows = broker.deps.db.sqlite.prepare('SELECT detail FROM gov_activities').all() as { detail: string }[];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.detail.includes(FIXTURE_TOKEN))).toBe(false);
  });
});
