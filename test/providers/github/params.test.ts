/**
 * The GitHub actions' strict params: injection attempts are refused by the zod schema, so the
 * decision path answers 422 before any HTTP request.
 */
import { describe, expect, it } from 'vitest';
import { githubProviderFromEnv } from '../../../src/providers/github/index.js';
import { scopedQuery } from '../../../src/providers/github/actions/issues.js';
import { branchNameProblem, repoPathProblem } from '../../../src/providers/github/schemas.js';

const provider = githubProviderFromEnv({ GITHUB_TOKEN: 'unused-in-these-tests' });
const action = (id: string) => {
  const a = provider.actions.find((x) => x.id === id);
  if (!a) throw new Error(`no action ${id}`);
  return a;
};
const accepts = (id: string, params: unknown) => action(id).params.safeParse(params).success;
const base = { owner: 'acme', repo: 'api' };

describe('the catalog entries', () => {
  it('registers the 16 actions with their levels, all scoped to owner/repo', () => {
    const levels = Object.fromEntries(provider.actions.map((a) => [a.id, a.level]));
    expect(levels).toEqual({
      'github.get_repo': 1,
      'github.get_content': 1,
      'github.list_issues': 1,
      'github.get_issue': 1,
      'github.list_pulls': 1,
      'github.get_pull': 1,
      'github.search_issues': 1,
      'github.list_workflow_runs': 1,
      'github.create_issue': 2,
      'github.comment_issue': 2,
      'github.add_labels': 2,
      'github.create_branch': 2,
      'github.put_file': 2,
      'github.create_pull': 2,
      'github.merge_pull': 3,
      'github.dispatch_workflow': 3,
    });
    for (const a of provider.actions) {
      expect(a.idempotent).toBe(a.level === 1);
      expect(a.resource({ ...base, path: 'x' })).toBe('acme/api');
    }
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
