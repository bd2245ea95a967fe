/**
 * Branches: `github.list_branches` (L1); the writes (L2) `github.create_branch` (refuses the
 * default branch and existing refs) and `github.put_file` (refuses the default branch and any
 * protected branch), which answer a refusal with 412 `precondition_failed`.
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../contract.js';
import { ApiError } from '../../../platform/http/problem.js';
import { isNotFound, type GitHubClient, type GitHubSession } from '../client.js';
import { collect, type ListResult } from '../results.js';
import { branch, limit, MAX_FILE_CONTENT, perPage, repoPath, repoResource, repoTarget, sha } from '../schemas.js';

/** One branch in `github.list_branches`. */
export interface BranchSummary {
  name: string;
  /** The commit the branch points at. */
  sha: string;
  /** True when branch protection or a ruleset protects it. */
  protected: boolean;
}

/** Result of `github.create_branch`. */
export interface CreatedBranch {
  /** `refs/heads/<branch>`. */
  ref: string;
  /** The commit the branch points at. */
  sha: string;
}

/** Result of `github.put_file`. */
export interface PutFileResult {
  path: string;
  branch: string;
  /** The new blob SHA (pass it as `sha` to update the file again). */
  sha: string;
  size: number;
  commit: { sha: string; html_url: string | null };
}

/** Branch names put_file refuses outright, whatever the repository's default branch is. */
const CONVENTIONAL_DEFAULTS = new Set(['main', 'master']);

const listBranchesParams = z.strictObject({
  ...repoTarget,
  /** true: only protected branches; false: only unprotected ones; omitted: all. */
  protected: z.boolean().optional(),
  per_page: perPage.optional(),
  limit,
});

const createBranchParams = z.strictObject({
  ...repoTarget,
  /** The new branch's name. */
  branch,
  /** Branch name or commit SHA to start from; the default branch when omitted. */
  from: z.union([sha, branch]).optional(),
});

const putFileParams = z.strictObject({
  ...repoTarget,
  path: repoPath,
  /** The branch to commit to: never the default branch nor a protected one. */
  branch: branch.refine((b) => !CONVENTIONAL_DEFAULTS.has(b), 'branch must not be main or master; commit to a work branch and open a pull request'),
  /** The file's new content, as text (`encoding: "utf-8"`) or base64. */
  content: z.string().max(MAX_FILE_CONTENT),
  encoding: z.enum(['utf-8', 'base64']).default('utf-8'),
  /** The commit message. */
  message: z.string().trim().min(1).max(1000),
  /** The blob SHA of the file being replaced; required by GitHub to update an existing file. */
  sha: sha.optional(),
}).refine((p) => p.encoding !== 'base64' || /^[A-Za-z0-9+/]*={0,2}$/.test(p.content), {
  message: 'content is not base64',
  path: ['content'],
});

async function defaultBranch(gh: GitHubSession): Promise<string> {
  const { data } = await gh.octokit.rest.repos.get({ owner: gh.owner, repo: gh.repo });
  return data.default_branch;
}

/** The SHA `heads/<name>` points at, or null when there is no such branch. */
async function branchSha(gh: GitHubSession, name: string): Promise<string | null> {
  try {
    const { data } = await gh.octokit.rest.git.getRef({ owner: gh.owner, repo: gh.repo, ref: `heads/${name}` });
    return data.object.sha;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

const refuse = (detail: string, extensions: Record<string, unknown> = {}) => new ApiError('precondition_failed', detail, extensions);

/** The branch actions. */
export function branchActions(gh: GitHubClient): ActionDefinition<any, unknown>[] {
  return [
    defineAction({
      id: 'github.list_branches',
      level: 1,
      description: 'List branches with the commit each points at and whether it is protected, across pages up to `limit` (default 100).',
      params: listBranchesParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `list branches ${p.owner}/${p.repo}${p.protected === undefined ? '' : ` protected=${p.protected}`}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { contents: 'read' }, async ({ octokit }): Promise<ListResult<BranchSummary>> => {
          const { limit: max, ...filters } = p;
          const pages = octokit.paginate.iterator(octokit.rest.repos.listBranches, filters);
          return collect(pages, max, (b) => ({ name: b.name, sha: b.commit.sha, protected: b.protected }));
        }),
    }),
    defineAction({
      id: 'github.create_branch',
      level: 2,
      description: 'Create a branch from a branch or commit (the default branch when omitted); refuses the default branch and existing refs.',
      params: createBranchParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `create branch ${p.owner}/${p.repo}:${p.branch}${p.from ? ` from ${p.from}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { contents: 'write' }, async (s): Promise<CreatedBranch> => {
          const defaultName = await defaultBranch(s);
          if (p.branch === defaultName) throw refuse(`${p.branch} is the default branch of ${p.owner}/${p.repo}.`, { default_branch: defaultName });
          const fromName = p.from ?? defaultName;
          const base = sha.safeParse(fromName).success ? fromName : await branchSha(s, fromName);
          if (base === null) throw refuse(`The branch ${fromName} to start from does not exist.`);
          if ((await branchSha(s, p.branch)) !== null) throw refuse(`The branch ${p.branch} already exists.`);
          const { data } = await s.octokit.rest.git.createRef({ owner: p.owner, repo: p.repo, ref: `refs/heads/${p.branch}`, sha: base });
          return { ref: data.ref, sha: data.object.sha };
        }),
    }),
    defineAction({
      id: 'github.put_file',
      level: 2,
      description: 'Create or update one file with a commit on a work branch; refuses the default branch and protected branches.',
      params: putFileParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `put file ${p.owner}/${p.repo}:${p.branch}:${p.path} (${p.content.length} chars ${p.encoding})`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { contents: 'write' }, async (s): Promise<PutFileResult> => {
          const defaultName = await defaultBranch(s);
          if (p.branch === defaultName) throw refuse(`${p.branch} is the default branch of ${p.owner}/${p.repo}.`, { default_branch: defaultName });
          let isProtected: boolean;
          try {
            ({ data: { protected: isProtected } } = await s.octokit.rest.repos.getBranch({ owner: p.owner, repo: p.repo, branch: p.branch }));
          } catch (err) {
            if (isNotFound(err)) throw refuse(`The branch ${p.branch} does not exist; create it with github.create_branch.`);
            throw err;
          }
          if (isProtected) throw refuse(`The branch ${p.branch} is protected.`);
          const content = p.encoding === 'base64' ? p.content : Buffer.from(p.content, 'utf8').toString('base64');
          const { data } = await s.octokit.rest.repos.createOrUpdateFileContents({
            owner: p.owner,
            repo: p.repo,
            path: p.path,
            message: p.message,
            content,
            branch: p.branch,
            sha: p.sha,
          });
          return {
            path: data.content?.path ?? p.path,
            branch: p.branch,
            sha: data.content?.sha ?? '',
            size: data.content?.size ?? Buffer.from(content, 'base64').length,
            commit: { sha: data.commit.sha ?? '', html_url: data.commit.html_url ?? null },
          };
        }),
    }),
  ];
}
