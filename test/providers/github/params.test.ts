/**
 * The GitHub actions' strict params: injection attempts are refused by the zod schema, so the
 * decision path answers 422 before any HTTP request.
 */
import { describe, expect, it } from 'vitest';
import { githubProviderFromEnv } from '../../../src/providers/github/index.js';
import { scopedQuery } from '../../../src/providers/github/actions/issues.js';
import { branchNameProblem, grantCovers, repoPathProblem } from '../../../src/providers/github/schemas.js';
import { matchesPattern } from '../../../src/modules/calls/decision/patterns.js';

const provider = githubProviderFromEnv({ GITHUB_TOKEN: 'unused-in-these-tests' });
const action = (id: string) => {
  const a = provider.actions.find((x) => x.id === id);
  if (!a) throw new Error(`no action ${id}`);
  return a;
};
const accepts = (id: string, params: unknown) => action(id).params.safeParse(params).success;
const base = { owner: 'acme', repo: 'api' };

describe('the catalog entries', () => {
  it('registers the 20 actions with their levels', () => {
    const levels = Object.fromEntries(provider.actions.map((a) => [a.id, a.level]));
    expect(levels).toEqual({
      'github.list_repos': 1,
      'github.get_repo': 1,
      'github.get_content': 1,
      'github.list_issues': 1,
      'github.get_issue': 1,
      'github.search_issues': 1,
      'github.create_issue': 2,
      'github.comment_issue': 2,
      'github.add_labels': 2,
      'github.close_issue': 2,
      'github.list_pulls': 1,
      'github.get_pull': 1,
      'github.list_pull_comments': 1,
      'github.create_pull': 2,
      'github.merge_pull': 3,
      'github.list_branches': 1,
      'github.create_branch': 2,
      'github.put_file': 2,
      'github.list_workflow_runs': 1,
      'github.dispatch_workflow': 3,
    });
  });

  it('retries only what cannot take effect twice: the reads, and close_issue (setting a state)', () => {
    for (const a of provider.actions) expect(a.idempotent, a.id).toBe(a.level === 1 || a.id === 'github.close_issue');
  });

  it('scopes every action but list_repos to owner/repo', () => {
    for (const a of provider.actions.filter((x) => x.id !== 'github.list_repos')) {
      expect(a.resource({ ...base, path: 'x', issue_number: 1, pull_number: 1 })).toBe('acme/api');
    }
  });

  it('scopes list_repos to the owner’s repositories, or to every resource without an owner', () => {
    const listRepos = action('github.list_repos');
    expect(listRepos.resource(listRepos.params.parse({ owner: 'acme' }))).toBe('acme/*');
    expect(listRepos.resource(listRepos.params.parse({}))).toBe('*');
    // What the decision makes of it: a grant on acme/* covers it, one on acme/api alone does not,
    // and only a grant on any resource covers the owner-less listing.
    expect(matchesPattern('acme/*', 'acme/*')).toBe(true);
    expect(matchesPattern('acme/api', 'acme/*')).toBe(false);
    expect(matchesPattern('acme/*', '*')).toBe(false);
    expect(matchesPattern('*', '*')).toBe(true);
  });

  it('summarises each new action for the audit trail', () => {
    const summary = (id: string, params: unknown) => action(id).summarize(action(id).params.parse(params));
    expect(summary('github.list_repos', { owner: 'acme' })).toBe('list repositories of acme');
    expect(summary('github.list_repos', {})).toBe('list repositories');
    expect(summary('github.list_branches', { ...base, protected: true })).toBe('list branches acme/api protected=true');
    expect(summary('github.list_pull_comments', { ...base, pull_number: 7 })).toBe('list comments of pull request acme/api#7');
    expect(summary('github.close_issue', { ...base, issue_number: 3, state_reason: 'not_planned' })).toBe('close issue acme/api#3 as not_planned');
    expect(summary('github.close_issue', { ...base, issue_number: 3, state: 'open' })).toBe('reopen issue acme/api#3');
  });
});

describe('grantCovers (list_repos keeps its listing within the grant)', () => {
  const cases: [patterns: string[], value: string][] = [
    [['acme/*'], 'acme/api'],
    [['acme/*'], 'acme-evil/api'],
    [['acme/*'], 'ACME/api'],
    [['acme/api'], 'acme/api'],
    [['acme/api'], 'acme/api2'],
    [['acme/api*'], 'acme/api2'],
    [['*'], 'anyone/anything'],
    [['acme/a*', 'other/x'], 'other/x'],
    [['acme/a*', 'other/x'], 'other/y'],
    [[], 'acme/api'],
  ];
  it.each(cases)('%j covers %j exactly when the decision’s pattern rule says so', (patterns, value) => {
    expect(grantCovers(patterns, value)).toBe(patterns.some((p) => matchesPattern(p, value)));
  });

  it('a grant without resources covers everything', () => {
    expect(grantCovers(null, 'anyone/anything')).toBe(true);
  });
});

describe('the new actions’ params', () => {
  it('list_repos takes an optional owner, per_page and limit, nothing else', () => {
    expect(accepts('github.list_repos', {})).toBe(true);
    expect(accepts('github.list_repos', { owner: 'acme', per_page: 100, limit: 1000 })).toBe(true);
    expect(accepts('github.list_repos', { owner: 'acme/api' })).toBe(false);
    expect(accepts('github.list_repos', { owner: '*' })).toBe(false);
    expect(accepts('github.list_repos', { repo: 'api' })).toBe(false);
    expect(accepts('github.list_repos', { per_page: 101 })).toBe(false);
    expect(accepts('github.list_repos', { limit: 0 })).toBe(false);
    expect(accepts('github.list_repos', { affiliation: 'owner' })).toBe(false);
  });

  it('list_branches takes owner/repo, an optional protected flag, per_page and limit', () => {
    expect(accepts('github.list_branches', base)).toBe(true);
    expect(accepts('github.list_branches', { ...base, protected: false, per_page: 50, limit: 10 })).toBe(true);
    expect(accepts('github.list_branches', { ...base, protected: 'true' })).toBe(false);
    expect(accepts('github.list_branches', { owner: 'acme' })).toBe(false);
    expect(accepts('github.list_branches', { ...base, repo: '..' })).toBe(false);
  });

  it('list_pull_comments needs a pull number; since is an ISO time', () => {
    expect(accepts('github.list_pull_comments', { ...base, pull_number: 1 })).toBe(true);
    expect(accepts('github.list_pull_comments', { ...base, pull_number: 1, since: '2024-05-01T00:00:00Z', per_page: 100, limit: 5 })).toBe(true);
    expect(accepts('github.list_pull_comments', base)).toBe(false);
    expect(accepts('github.list_pull_comments', { ...base, pull_number: 0 })).toBe(false);
    expect(accepts('github.list_pull_comments', { ...base, pull_number: '1' })).toBe(false);
    expect(accepts('github.list_pull_comments', { ...base, pull_number: 1, since: 'yesterday' })).toBe(false);
    expect(accepts('github.list_pull_comments', { ...base, pull_number: 1, kind: 'review' })).toBe(false);
  });

  it('close_issue closes as completed by default; the reason must fit the state', () => {
    const close = action('github.close_issue').params;
    expect(close.parse({ ...base, issue_number: 1 })).toEqual({ ...base, issue_number: 1, state: 'closed' });
    for (const ok of [
      { state_reason: 'completed' },
      { state_reason: 'not_planned' },
      { state: 'closed', state_reason: 'not_planned' },
      { state: 'open' },
      { state: 'open', state_reason: 'reopened' },
    ]) {
      expect(accepts('github.close_issue', { ...base, issue_number: 1, ...ok }), JSON.stringify(ok)).toBe(true);
    }
    for (const bad of [
      { state_reason: 'reopened' },
      { state: 'open', state_reason: 'completed' },
      { state: 'open', state_reason: 'not_planned' },
      { state_reason: 'duplicate' },
      { state: 'locked' },
      { issue_number: undefined },
      { labels: ['x'] },
    ]) {
      expect(accepts('github.close_issue', { ...base, issue_number: 1, ...bad }), JSON.stringify(bad)).toBe(false);
    }
    const refused = close.safeParse({ ...base, issue_number: 1, state: 'open', state_reason: 'completed' });
    expect(refused.error?.issues.map((i: { path: PropertyKey[]; message: string }) => [i.path, i.message])).toEqual([[['state_reason'], 'state_reason must be completed or not_planned to close, reopened to reopen']]);
  });
});

describe('injection attempts are refused by the schema', () => {
  it.each([
    ['../secrets'],
    ['docs/../../etc/passwd'],
    ['/etc/passwd'],
    ['docs/'],
    ['docs//x'],
    ['./README.md'],
    ['a\\..\\b'],
    ['a\nb'],
  ])('get_content path %j', (path) => {
    expect(accepts('github.get_content', { ...base, path })).toBe(false);
  });

  it('put_file refuses a path with ../ and the branch main or master', () => {
    const ok = { ...base, path: 'src/a.ts', branch: 'feature/x', content: 'x', message: 'm' };
    expect(accepts('github.put_file', ok)).toBe(true);
    expect(accepts('github.put_file', { ...ok, path: '../a.ts' })).toBe(false);
    expect(accepts('github.put_file', { ...ok, branch: 'main' })).toBe(false);
    expect(accepts('github.put_file', { ...ok, branch: 'master' })).toBe(false);
    expect(accepts('github.put_file', { ...ok, branch: 'refs/heads/main' })).toBe(false);
    expect(accepts('github.put_file', { ...ok, encoding: 'base64', content: 'not base64!' })).toBe(false);
  });

  it.each([['evil/acme'], ['-acme'], [''], ['a'.repeat(40)], ['acme?x=1'], ['acme%2Fx']])('owner %j', (owner) => {
    expect(accepts('github.get_repo', { owner, repo: 'api' })).toBe(false);
  });

  it.each([['.'], ['..'], ['api/x'], ['a'.repeat(101)], ['api#x'], ['']])('repo %j', (repo) => {
    expect(accepts('github.get_repo', { owner: 'acme', repo })).toBe(false);
  });

  it('refuses unknown keys (strict objects)', () => {
    expect(accepts('github.get_repo', { ...base, baseUrl: 'https://evil.example' })).toBe(false);
    expect(accepts('github.create_issue', { ...base, title: 't', headers: { authorization: 'x' } })).toBe(false);
  });

  it.each([
    ['feature..x'],
    ['-x'],
    ['x.lock'],
    ['a/.hidden'],
    ['a b'],
    ['a~1'],
    ['a^'],
    ['a:b'],
    ['a?'],
    ['a*'],
    ['a[0]'],
    ['/a'],
    ['a/'],
    ['a//b'],
    ['a.'],
    ['a@{1}'],
    ['@'],
    ['HEAD'],
    ['refs/heads/x'],
    ['a\\b'],
    ['x'.repeat(256)],
  ])('create_branch branch %j (git check-ref-format)', (branch) => {
    expect(accepts('github.create_branch', { ...base, branch })).toBe(false);
  });

  it('accepts ordinary branch names', () => {
    for (const b of ['feature/login', 'fix-123', 'release/v1.2.3', 'user@x', 'a.b']) expect(branchNameProblem(b)).toBeNull();
  });

  it('caps titles and bodies', () => {
    expect(accepts('github.create_issue', { ...base, title: 'x'.repeat(256) })).toBe(true);
    expect(accepts('github.create_issue', { ...base, title: 'x'.repeat(257) })).toBe(false);
    expect(accepts('github.create_issue', { ...base, title: '   ' })).toBe(false);
    expect(accepts('github.comment_issue', { ...base, issue_number: 1, body: 'x'.repeat(65_537) })).toBe(false);
    expect(accepts('github.comment_issue', { ...base, issue_number: 1, body: '' })).toBe(false);
  });

  it('refuses non-identifier workflow inputs and non-workflow files', () => {
    const ok = { ...base, workflow_id: 'deploy.yml', ref: 'main' };
    expect(accepts('github.dispatch_workflow', ok)).toBe(true);
    expect(accepts('github.dispatch_workflow', { ...ok, workflow_id: '../deploy.yml' })).toBe(false);
    expect(accepts('github.dispatch_workflow', { ...ok, workflow_id: 'deploy.sh' })).toBe(false);
    expect(accepts('github.dispatch_workflow', { ...ok, inputs: { 'a b': 'x' } })).toBe(false);
    expect(accepts('github.dispatch_workflow', { ...ok, ref: 'main..x' })).toBe(false);
  });

  it('search_issues refuses boolean operators that could widen the forced repo: qualifier', () => {
    expect(accepts('github.search_issues', { ...base, query: 'bug' })).toBe(true);
    expect(accepts('github.search_issues', { ...base, query: 'bug OR repo:other/x' })).toBe(false);
    expect(accepts('github.search_issues', { ...base, query: 'bug AND x' })).toBe(false);
    expect(accepts('github.search_issues', { ...base, query: '(bug)' })).toBe(false);
    expect(accepts('github.search_issues', { ...base, query: '"error (fatal) OR crash"' })).toBe(true);
  });
});

describe('scopedQuery', () => {
  it.each([
    ['sesame', 'sesame repo:acme/api'],
    ['bug repo:other/x', 'bug repo:acme/api'],
    ['bug -repo:acme/api org:other user:me owner:x', 'bug repo:acme/api'],
    ['bug repo:"other/x" is:open', 'bug is:open repo:acme/api'],
    ['REPO:other/x Org:y bug', 'bug repo:acme/api'],
    ['repo:other/x', 'repo:acme/api'],
  ])('%j -> %j', (query, expected) => {
    expect(scopedQuery(query, 'acme', 'api')).toBe(expected);
  });
});

describe('repoPathProblem', () => {
  it('accepts nested paths and dotfiles', () => {
    for (const p of ['README.md', 'src/a/b.ts', '.github/workflows/ci.yml', 'a..b/c']) expect(repoPathProblem(p)).toBeNull();
  });
});
