/**
 * Each GitHub action's `execute` with real Octokit against @octokit/fixtures-server replaying
 * recorded (or recorded-format) GitHub traffic. Every scenario must be fully consumed: no missing
 * and no unexpected request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubProviderFromEnv } from '../../../src/providers/github/index.js';
import { ProviderError, type Provider } from '../../../src/providers/contract.js';
import { ApiError } from '../../../src/platform/http/problem.js';
import { DEFAULT_RESULT_MAX_BYTES } from '../../../src/providers/github/client.js';
import { largeBinary, largeText, leakedKeyText } from '../../fixtures/github/build.js';
import { FIXTURE_TOKEN, ORG, runAction, startGitHubFixtures, testContext, type GitHubFixtures, type Scenario } from './fixtures.js';

let fx: GitHubFixtures;
beforeAll(async () => {
  fx = await startGitHubFixtures();
});
afterAll(() => fx.close());

/** Loads `scenario` and a provider pointed at it with the fixture token. */
async function scenario(name: string): Promise<{ sc: Scenario; provider: Provider; run: (id: string, params: unknown) => Promise<any> }> {
  const sc = await fx.load(name);
  const provider = githubProviderFromEnv({ GITHUB_TOKEN: FIXTURE_TOKEN, GITHUB_API_URL: sc.url });
  return { sc, provider, run: (id, params) => runAction(provider, id, params) };
}

/** A github.com URL as the fixtures server rewrites it (`<origin>/github.com/<id>/<path>`). */
const html = (p: string) => expect.stringMatching(new RegExp(`/github\\.com/[a-z0-9]+/${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
const sha = (n: number) => String(n).padStart(40, '0');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

describe('L1 reads', () => {
  it('get_repo answers the trimmed repository', async () => {
    const { sc, run } = await scenario('get-repository');
    const out = await run('github.get_repo', { owner: ORG, repo: 'hello-world' });
    expect(out).toEqual({
      full_name: `${ORG}/hello-world`,
      description: null,
      private: false,
      visibility: 'public',
      default_branch: 'master',
      archived: false,
      fork: false,
      topics: ['fixtures', 'hello', 'hello-world'],
      open_issues_count: 42,
      stargazers_count: 42,
      forks_count: 42,
      html_url: html(`${ORG}/hello-world`),
      pushed_at: '2017-10-10T16:00:00Z',
      updated_at: '2017-10-10T16:00:00Z',
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('get_content lists the root directory and reads a file raw', async () => {
    const { sc, run } = await scenario('get-content');
    expect(await run('github.get_content', { owner: ORG, repo: 'hello-world' })).toEqual({
      type: 'dir',
      path: '',
      ref: null,
      items: [{ name: 'README.md', path: 'README.md', type: 'file', size: 13, sha: '93a078d1c3f76aa1ca11def8f882a06df1d4a01b' }],
      truncated: false,
    });
    expect(await run('github.get_content', { owner: ORG, repo: 'hello-world', path: 'README.md' })).toEqual({
      type: 'file',
      path: 'README.md',
      ref: null,
      encoding: 'utf-8',
      size: 13,
      content: '# hello-world',
      truncated: false,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('get_content reads only the front of a large file: cut on a character boundary, within the cap, real size', async () => {
    const { sc, run } = await scenario('get-content-large');
    const text = largeText();
    const out = await run('github.get_content', { owner: ORG, repo: 'get-content-large', path: 'large.txt' });
    expect(out).toEqual({ type: 'file', path: 'large.txt', ref: null, encoding: 'utf-8', size: Buffer.byteLength(text, 'utf8'), content: expect.any(String), truncated: true });
    expect(Buffer.byteLength(JSON.stringify(out), 'utf8')).toBeLessThanOrEqual(DEFAULT_RESULT_MAX_BYTES);
    // As much as fits: two more UTF-16 units (one more character, or a whole 𝄞) would not.
    expect(Buffer.byteLength(JSON.stringify({ ...out, content: text.slice(0, out.content.length + 2) }), 'utf8')).toBeGreaterThan(DEFAULT_RESULT_MAX_BYTES);
    // A clean prefix of the file (no mark), ending on a whole character: valid UTF-8 both ways.
    expect(text.startsWith(out.content)).toBe(true);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(out.content, 'utf8'))).toBe(out.content);
    expect(out.content).not.toContain('\uFFFD');

    const bin = await run('github.get_content', { owner: ORG, repo: 'get-content-large', path: 'large.bin' });
    expect(bin).toMatchObject({ type: 'file', encoding: 'base64', size: largeBinary().length, truncated: true });
    expect(Buffer.byteLength(JSON.stringify(bin), 'utf8')).toBeLessThanOrEqual(DEFAULT_RESULT_MAX_BYTES);
    expect(bin.content.length % 4).toBe(0);
    const bytes = Buffer.from(bin.content, 'base64');
    expect(bytes.length).toBeGreaterThan(40 * 1024);
    expect(bytes.equals(largeBinary().subarray(0, bytes.length))).toBe(true);

    // A secret across the cut is redacted whole before the cut (a cut key's armour would not match).
    const small = githubProviderFromEnv({ GITHUB_TOKEN: FIXTURE_TOKEN, GITHUB_API_URL: sc.url, GITHUB_RESULT_MAX_BYTES: '1024' });
    const leaked = (await runAction(small, 'github.get_content', { owner: ORG, repo: 'get-content-large', path: 'leaked.txt' })) as { content: string };
    expect(leaked).toMatchObject({ encoding: 'utf-8', size: Buffer.byteLength(leakedKeyText(), 'utf8'), truncated: true });
    expect(Buffer.byteLength(JSON.stringify(leaked), 'utf8')).toBeLessThanOrEqual(1024);
    expect(leaked.content).toMatch(/^(# deployment notes\n){40}\[REDACTED\]\n# more notes\n/);
    expect(leaked.content).not.toMatch(/PRIVATE KEY|MIIEow/);
    expect(await sc.pending()).toEqual([]);
  });

  it('list_issues follows Link pages until the list ends', async () => {
    const { sc, run } = await scenario('paginate-issues');
    const out = await run('github.list_issues', { owner: ORG, repo: 'paginate-issues', per_page: 3 });
    expect(out.truncated).toBe(false);
    expect(out.items.map((i: { number: number }) => i.number)).toEqual([13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(out.items[0]).toEqual({
      number: 13,
      title: 'Test issue 13',
      state: 'open',
      is_pull_request: false,
      user: 'octokit-fixture-user-a',
      labels: [],
      assignees: [],
      comments: expect.any(Number),
      created_at: '2017-10-10T16:00:00Z',
      updated_at: '2017-10-10T16:00:00Z',
      closed_at: null,
      html_url: html(`${ORG}/paginate-issues/issues/13`),
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('list_issues stops fetching pages at its limit and says the list was truncated', async () => {
    const { sc, run } = await scenario('paginate-issues-two-pages');
    const out = await run('github.list_issues', { owner: ORG, repo: 'paginate-issues', per_page: 3, limit: 5 });
    expect(out.items.map((i: { number: number }) => i.number)).toEqual([13, 12, 11, 10, 9]);
    expect(out.truncated).toBe(true);
    expect(await sc.pending()).toEqual([]);
  });

  it('get_issue answers the issue with body, labels, assignees and milestone', async () => {
    const { sc, run } = await scenario('get-issue');
    const out = await run('github.get_issue', { owner: ORG, repo: 'get-issue', issue_number: 1 });
    expect(out).toEqual({
      number: 1,
      title: 'Crash when the config file is empty',
      state: 'open',
      is_pull_request: false,
      user: 'octokit-fixture-user-a',
      labels: ['bug'],
      assignees: ['octokit-fixture-user-b'],
      comments: 2,
      created_at: '2017-10-10T16:00:00Z',
      updated_at: '2017-10-10T16:00:00Z',
      closed_at: null,
      html_url: html(`${ORG}/get-issue/issues/1`),
      body: 'Steps to reproduce:\n1. create an empty config\n2. start',
      state_reason: null,
      locked: false,
      milestone: 'v1.0',
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('list_pulls pages through pull requests with head and base', async () => {
    const { sc, run } = await scenario('list-pulls');
    const out = await run('github.list_pulls', { owner: ORG, repo: 'list-pulls', state: 'open', per_page: 1 });
    expect(out.truncated).toBe(false);
    expect(out.items.map((p: { number: number; draft: boolean }) => [p.number, p.draft])).toEqual([
      [2, false],
      [1, true],
    ]);
    expect(out.items[0]).toMatchObject({
      title: 'Second change',
      state: 'open',
      head: { ref: 'feature', sha: sha(2), repo: `${ORG}/list-pulls` },
      base: { ref: 'main', sha: sha(4), repo: `${ORG}/list-pulls` },
      merged_at: null,
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('get_pull answers the pull request and the combined status of its head', async () => {
    const { sc, run } = await scenario('get-pull');
    const out = await run('github.get_pull', { owner: ORG, repo: 'get-pull', pull_number: 1 });
    expect(out).toMatchObject({
      number: 1,
      state: 'open',
      merged: false,
      mergeable: true,
      mergeable_state: 'clean',
      commits: 1,
      additions: 3,
      deletions: 1,
      changed_files: 1,
      body: 'Changes for the fixture.',
      head: { ref: 'feature', sha: sha(2) },
      head_status: {
        state: 'success',
        total_count: 1,
        statuses: [{ context: 'ci/build', state: 'success', description: 'ci/build success', target_url: 'https://example.com' }],
      },
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('search_issues replaces the caller’s scope qualifiers with the granted repository', async () => {
    const { sc, run } = await scenario('search-issues');
    const out = await run('github.search_issues', { owner: ORG, repo: 'search-issues', query: 'sesame repo:someone/else -org:other user:me' });
    expect(out.query).toBe(`sesame repo:${ORG}/search-issues`);
    expect(out.total_count).toBe(2);
    expect(out.items.map((i: { number: number; title: string }) => [i.number, i.title])).toEqual([
      [2, 'Sesame seeds split without a pop!'],
      [1, 'The doors don’t open'],
    ]);
    expect(await sc.pending()).toEqual([]);
  });

  it('list_workflow_runs pages through runs with their status and conclusion', async () => {
    const { sc, run } = await scenario('list-workflow-runs');
    const out = await run('github.list_workflow_runs', { owner: ORG, repo: 'list-workflow-runs', branch: 'main', per_page: 2 });
    expect(out.total_count).toBe(3);
    expect(out.truncated).toBe(false);
    expect(out.items.map((r: { id: number; status: string; conclusion: string | null }) => [r.id, r.status, r.conclusion])).toEqual([
      [1002, 'in_progress', null],
      [1001, 'completed', 'failure'],
      [1000, 'completed', 'success'],
    ]);
    expect(out.items[2]).toEqual({
      id: 1000,
      name: 'CI',
      display_title: 'Fixture commit',
      event: 'push',
      status: 'completed',
      conclusion: 'success',
      head_branch: 'main',
      head_sha: sha(5),
      run_number: 1,
      run_attempt: 1,
      workflow_id: 1000,
      actor: 'octokit-fixture-user-a',
      html_url: html(`${ORG}/list-workflow-runs/actions/runs/1000`),
      created_at: '2017-10-10T16:00:00Z',
      updated_at: '2017-10-10T16:00:00Z',
    });
    expect(await sc.pending()).toEqual([]);
  });
});

describe('L2 writes', () => {
  it('create_issue then add_labels', async () => {
    const { sc, run } = await scenario('add-labels-to-issue');
    const issue = await run('github.create_issue', { owner: ORG, repo: 'add-labels-to-issue', title: 'Issue without a label' });
    expect(issue).toEqual({ number: 1, title: 'Issue without a label', state: 'open', html_url: html(`${ORG}/add-labels-to-issue/issues/1`) });
    const labels = await run('github.add_labels', { owner: ORG, repo: 'add-labels-to-issue', issue_number: 1, labels: ['Foo', 'bAr', 'baZ'] });
    expect(labels).toEqual({ labels: ['Foo', 'bAr', 'baZ'] });
    expect(await sc.pending()).toEqual([]);
  });

  it('comment_issue', async () => {
    const { sc, run } = await scenario('comment-issue');
    const out = await run('github.comment_issue', { owner: ORG, repo: 'comment-issue', issue_number: 1, body: 'Reproduced on main; fix in progress.' });
    expect(out).toEqual({ id: 1000, html_url: html(`${ORG}/comment-issue/issues/1#issuecomment-1000`), created_at: '2017-10-10T16:00:00Z' });
    expect(await sc.pending()).toEqual([]);
  });

  it('create_branch starts from the default branch after checking the new ref does not exist', async () => {
    const { sc, run } = await scenario('create-branch');
    const out = await run('github.create_branch', { owner: ORG, repo: 'git-refs', branch: 'test' });
    expect(out).toEqual({ ref: 'refs/heads/test', sha: sha(2) });
    expect(await sc.pending()).toEqual([]);
  });

  it('create_branch refuses an existing ref with 412 and creates nothing', async () => {
    const { sc, run } = await scenario('create-branch-exists');
    const err = await rejection(run('github.create_branch', { owner: ORG, repo: 'git-refs', branch: 'test' }));
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(412);
    expect((err as ApiError).detail).toContain('already exists');
    expect(await sc.pending()).toEqual([]);
  });

  it('create_branch refuses the default branch with 412', async () => {
    const { sc, run } = await scenario('create-branch-default');
    const err = await rejection(run('github.create_branch', { owner: ORG, repo: 'git-refs', branch: 'main' }));
    expect(err).toMatchObject({ code: 'precondition_failed', status: 412, extensions: { default_branch: 'main' } });
    expect(await sc.pending()).toEqual([]);
  });

  it('put_file commits to a work branch after checking it is neither default nor protected', async () => {
    const { sc, run } = await scenario('put-file');
    const out = await run('github.put_file', {
      owner: ORG,
      repo: 'create-file',
      path: 'test.txt',
      branch: 'feature',
      content: 'Test content',
      message: 'create test.txt',
    });
    expect(out).toEqual({
      path: 'test.txt',
      branch: 'feature',
      sha: '3f3f005b29247e51a4f4d6b8ce07b67646cd6074',
      size: 12,
      commit: { sha: sha(2), html_url: html(`${ORG}/create-file/commit/${sha(2)}`) },
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('put_file refuses a protected branch with 412 and writes nothing', async () => {
    const { sc, run } = await scenario('put-file-protected');
    const err = await rejection(
      run('github.put_file', { owner: ORG, repo: 'create-file', path: 'test.txt', branch: 'release', content: 'x', message: 'm' }),
    );
    expect(err).toMatchObject({ code: 'precondition_failed', status: 412 });
    expect((err as ApiError).detail).toContain('protected');
    expect(await sc.pending()).toEqual([]);
  });

  it('create_pull', async () => {
    const { sc, run } = await scenario('create-pull');
    const out = await run('github.create_pull', {
      owner: ORG,
      repo: 'create-pull',
      title: 'Add retry to the fetcher',
      head: 'feature',
      base: 'main',
      body: 'Retries twice with backoff.',
    });
    expect(out).toEqual({
      number: 1,
      state: 'open',
      draft: false,
      head: { ref: 'feature', sha: sha(2), repo: `${ORG}/create-pull` },
      base: { ref: 'main', sha: sha(4), repo: `${ORG}/create-pull` },
      html_url: html(`${ORG}/create-pull/pull/1`),
    });
    expect(await sc.pending()).toEqual([]);
  });
});

describe('L3 production', () => {
  it('merge_pull merges at the checked head SHA when every precondition holds', async () => {
    const { sc, run } = await scenario('merge-pull');
    const out = await run('github.merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1, merge_method: 'squash' });
    expect(out).toEqual({ merged: true, sha: sha(3), message: 'Pull Request successfully merged' });
    expect(await sc.pending()).toEqual([]);
  });

  const refusals: [scenario: string, unmet: string[], detail: RegExp][] = [
    ['merge-pull-not-mergeable', ['mergeable'], /not mergeable \(mergeable_state is dirty\)/],
    ['merge-pull-closed', ['open', 'mergeable'], /is closed/],
    ['merge-pull-unprotected', ['base_protected'], /base branch main is not protected/],
    ['merge-pull-checks-failing', ['checks'], /test=failure, e2e=in_progress/],
    ['merge-pull-statuses-failing', ['statuses'], /example\/1=failure/],
  ];
  it.each(refusals)('merge_pull refuses with 412 (%s) and never calls the merge endpoint', async (name, unmet, detail) => {
    const { sc, run } = await scenario(name);
    const err = await rejection(run('github.merge_pull', { owner: ORG, repo: 'merge-pull', pull_number: 1 }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'precondition_failed', status: 412 });
    const ext = (err as ApiError).extensions as { unmet: { check: string; detail: string }[] };
    expect(ext.unmet.map((u) => u.check)).toEqual(unmet);
    expect((err as ApiError).detail).toMatch(detail);
    // The scenario holds the four reads and no merge: consumed means no PUT was sent.
    expect(await sc.pending()).toEqual([]);
  });

  it('dispatch_workflow runs a workflow_dispatch workflow with inputs', async () => {
    const { sc, run } = await scenario('dispatch-workflow');
    const out = await run('github.dispatch_workflow', {
      owner: ORG,
      repo: 'dispatch-workflow',
      workflow_id: 'deploy.yml',
      ref: 'main',
      inputs: { environment: 'production', dry_run: false },
    });
    expect(out).toEqual({ dispatched: true, workflow: 'deploy.yml', ref: 'main' });
    expect(await sc.pending()).toEqual([]);
  });
});

describe('failures', () => {
  it('a GitHub 422 surfaces as ProviderError with GitHub’s field errors', async () => {
    const { sc, run } = await scenario('errors-add-labels');
    const err = await rejection(run('github.add_labels', { owner: ORG, repo: 'errors', issue_number: 1, labels: ['foo'] }));
    expect(err).toBeInstanceOf(ProviderError);
    const pe = err as ProviderError;
    expect(pe.providerStatus).toBe(422);
    expect(pe.providerCode).toBe('validation_failed');
    expect(pe.message).toBe('GitHub answered 422: Validation Failed');
    expect(pe.details).toMatchObject({
      message: 'Validation Failed',
      errors: [{ resource: 'Label', code: 'invalid', field: 'color' }],
      documentation_url: expect.stringMatching(/\/rest\/reference\/issues#create-a-label$/),
    });
    expect(JSON.stringify(pe.details)).not.toContain(FIXTURE_TOKEN);
    expect(await sc.pending()).toEqual([]);
  });

  it('an aborted signal stops the request before it is sent, and it is not retried', async () => {
    const { sc, provider } = await scenario('get-repository');
    const ac = new AbortController();
    ac.abort();
    const err = await rejection(runAction(provider, 'github.get_repo', { owner: ORG, repo: 'hello-world' }, testContext(ac.signal)));
    expect((err as Error).name).toBe('AbortError');
    expect(await sc.pending()).toHaveLength(1);
  });
});
