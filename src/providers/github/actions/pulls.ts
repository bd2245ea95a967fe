/**
 * Pull requests: `list_pulls`, `get_pull`, `list_pull_comments` (L1); `create_pull` (L2); `merge_pull` (L3, refused with
 * 412 `precondition_failed` unless the PR is open and mergeable, every check and status on its
 * head passed, and its base branch is protected).
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../contract.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { GitHubClient, GitHubSession } from '../client.js';
import { clipBody, collect, itemsOf, loginOf, mergeAscending, pullSummary, type GitHubPullLike, type ListResult, type PullEnd, type PullSummary } from '../results.js';
import { body, branch, branchNameProblem, isoTime, issueNumber, limit, owner, perPage, repoResource, repoTarget, title, MAX_TITLE } from '../schemas.js';

/** The combined commit status of a ref (https://docs.github.com/en/rest/commits/statuses). */
export interface CombinedStatus {
  /** `success`, `pending` or `failure` (GitHub's combination of every status). */
  state: string;
  total_count: number;
  statuses: { context: string; state: string; description: string | null; target_url: string | null }[];
}

/** Result of `github.get_pull`. */
export interface PullDetail extends PullSummary {
  body: string | null;
  merged: boolean;
  /** null while GitHub is still computing it. */
  mergeable: boolean | null;
  mergeable_state: string | null;
  commits: number;
  additions: number;
  deletions: number;
  changed_files: number;
  /** Combined status of the head commit. */
  head_status: CombinedStatus;
}

/**
 * One comment in `github.list_pull_comments`: a conversation comment (`kind: "issue"`, GitHub's
 * issue comments of the pull request) or a review comment on the diff (`kind: "review"`). The
 * diff fields are null for conversation comments; `line` is also null on an outdated review comment.
 */
export interface PullComment {
  kind: 'issue' | 'review';
  id: number;
  user: string | null;
  /** Clipped to 16 KiB. */
  body: string | null;
  created_at: string;
  updated_at: string;
  html_url: string;
  path: string | null;
  line: number | null;
  commit_id: string | null;
  /** The review comment this one answers. */
  in_reply_to_id: number | null;
}

/** Shape of the GitHub issue and review comment fields {@link PullComment} reads. */
interface GitHubCommentLike {
  id: number;
  user?: { login?: string } | null;
  body?: string | null;
  created_at: string;
  updated_at: string;
  html_url: string;
  path?: string;
  line?: number | null;
  commit_id?: string;
  in_reply_to_id?: number;
}

const pullComment = (kind: PullComment['kind'], c: GitHubCommentLike): PullComment => ({
  kind,
  id: c.id,
  user: loginOf(c.user),
  body: clipBody(c.body),
  created_at: c.created_at,
  updated_at: c.updated_at,
  html_url: c.html_url,
  path: c.path ?? null,
  line: c.line ?? null,
  commit_id: c.commit_id ?? null,
  in_reply_to_id: c.in_reply_to_id ?? null,
});

/** Result of `github.create_pull`. */
export interface CreatedPull {
  number: number;
  state: string;
  draft: boolean;
  head: PullEnd;
  base: PullEnd;
  html_url: string;
}

/** Result of `github.merge_pull`. */
export interface MergeResult {
  merged: boolean;
  /** The merge commit's SHA. */
  sha: string;
  message: string;
}

/** One unmet merge precondition, listed in the 412 problem's `unmet`. */
export interface UnmetPrecondition {
  check: 'open' | 'mergeable' | 'checks' | 'statuses' | 'base_protected';
  detail: string;
}

const listPullsParams = z.strictObject({
  ...repoTarget,
  state: z.enum(['open', 'closed', 'all']).optional(),
  /** Filter by head: `user:branch` or `org:branch`. */
  head: z.string().max(300).optional().refine((h) => h === undefined || headProblem(h) === null, 'head must be branch or owner:branch'),
  base: branch.optional(),
  sort: z.enum(['created', 'updated', 'popularity', 'long-running']).optional(),
  direction: z.enum(['asc', 'desc']).optional(),
  per_page: perPage.optional(),
  limit,
});

const pullParams = z.strictObject({ ...repoTarget, pull_number: issueNumber });

const listPullCommentsParams = z.strictObject({
  ...repoTarget,
  pull_number: issueNumber,
  /** Only comments updated at or after this time (GitHub's `since`, on both lists). */
  since: isoTime.optional(),
  /** Page size of each of the two lists. */
  per_page: perPage.optional(),
  limit,
});

/** Why `head` is not `branch` or `owner:branch`, or null. */
function headProblem(head: string): string | null {
  const i = head.indexOf(':');
  if (i < 0) return branchNameProblem(head);
  if (!owner.safeParse(head.slice(0, i)).success) return 'owner is invalid';
  return branchNameProblem(head.slice(i + 1));
}

const createPullParams = z.strictObject({
  ...repoTarget,
  title,
  /** The branch with the changes: `branch` in this repository or `owner:branch` in a fork. */
  head: z.string().superRefine((h, ctx) => {
    const problem = headProblem(h);
    if (problem) ctx.addIssue({ code: 'custom', message: `head ${problem}` });
  }),
  /** The branch to merge into. */
  base: branch,
  body: body.optional(),
  draft: z.boolean().optional(),
  maintainer_can_modify: z.boolean().optional(),
});

const mergePullParams = z.strictObject({
  ...repoTarget,
  pull_number: issueNumber,
  merge_method: z.enum(['merge', 'squash', 'rebase']).optional(),
  commit_title: z.string().min(1).max(MAX_TITLE).optional(),
  commit_message: body.optional(),
});

/** Check run conclusions that let a merge through. */
const PASSING_CONCLUSIONS = new Set(['success', 'neutral', 'skipped']);
/** Most check runs inspected on a head; more is refused rather than half-checked. */
const MAX_CHECK_RUNS = 1000;

async function combinedStatus(gh: GitHubSession, sha: string): Promise<CombinedStatus> {
  const { data } = await gh.octokit.rest.repos.getCombinedStatusForRef({ owner: gh.owner, repo: gh.repo, ref: sha, per_page: 100 });
  return {
    state: data.state,
    total_count: data.total_count,
    statuses: data.statuses.map((s) => ({ context: s.context, state: s.state, description: s.description, target_url: s.target_url })),
  };
}

/**
 * Evaluates every merge precondition (reads only) and returns the unmet ones, empty when the merge
 * may go ahead. Order of requests: the pull request, its base branch, the head's combined status,
 * the head's check runs.
 */
export async function unmetMergePreconditions(gh: GitHubSession, pr: {
  state: string;
  draft?: boolean;
  mergeable: boolean | null;
  mergeable_state?: string;
  head: { sha: string };
  base: { ref: string };
}): Promise<UnmetPrecondition[]> {
  const unmet: UnmetPrecondition[] = [];
  if (pr.state !== 'open') unmet.push({ check: 'open', detail: `the pull request is ${pr.state}` });
  if (pr.mergeable === null) {
    unmet.push({ check: 'mergeable', detail: 'GitHub has not computed mergeability yet; retry in a few seconds' });
  } else if (!pr.mergeable || pr.draft || pr.mergeable_state === 'dirty' || pr.mergeable_state === 'blocked') {
    const why = pr.draft ? 'it is a draft' : `mergeable_state is ${pr.mergeable_state ?? 'unknown'}`;
    unmet.push({ check: 'mergeable', detail: `the pull request is not mergeable (${why})` });
  }

  const { data: base } = await gh.octokit.rest.repos.getBranch({ owner: gh.owner, repo: gh.repo, branch: pr.base.ref });
  if (!base.protected) unmet.push({ check: 'base_protected', detail: `the base branch ${pr.base.ref} is not protected` });

  const status = await combinedStatus(gh, pr.head.sha);
  if (status.total_count > 0 && status.state !== 'success') {
    const failing = status.statuses.filter((s) => s.state !== 'success').map((s) => `${s.context}=${s.state}`);
    unmet.push({ check: 'statuses', detail: `commit statuses on ${pr.head.sha} are ${status.state}: ${failing.join(', ')}` });
  }

  const pages = gh.octokit.paginate.iterator(gh.octokit.rest.checks.listForRef, { owner: gh.owner, repo: gh.repo, ref: pr.head.sha, per_page: 100 });
  const runs = await collect(pages, MAX_CHECK_RUNS, (r) => ({ name: r.name, status: r.status, conclusion: r.conclusion }));
  if (runs.truncated) {
    unmet.push({ check: 'checks', detail: `more than ${MAX_CHECK_RUNS} check runs on ${pr.head.sha}; refusing to merge unchecked` });
  } else {
    const failing = runs.items.filter((r) => r.status !== 'completed' || !PASSING_CONCLUSIONS.has(r.conclusion ?? ''));
    if (failing.length > 0) {
      const list = failing.map((r) => `${r.name}=${r.status === 'completed' ? r.conclusion : r.status}`).join(', ');
      unmet.push({ check: 'checks', detail: `check runs on ${pr.head.sha} did not all pass: ${list}` });
    }
  }
  return unmet;
}

/** The pull request actions. */
export function pullActions(gh: GitHubClient): ActionDefinition<any, unknown>[] {
  return [
    defineAction({
      id: 'github.list_pulls',
      level: 1,
      description: 'List pull requests with filters, across pages up to `limit` (default 100).',
      params: listPullsParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `list pull requests ${p.owner}/${p.repo}${p.state ? ` state=${p.state}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { pull_requests: 'read' }, async ({ octokit }): Promise<ListResult<PullSummary>> => {
          const { limit: max, ...filters } = p;
          const pages = octokit.paginate.iterator(octokit.rest.pulls.list, filters);
          return collect(pages, max, (pr) => pullSummary(pr as GitHubPullLike));
        }),
    }),
    defineAction({
      id: 'github.get_pull',
      level: 1,
      description: 'Read one pull request with its mergeability and the combined status of its head.',
      params: pullParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `get pull request ${p.owner}/${p.repo}#${p.pull_number}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { pull_requests: 'read', statuses: 'read' }, async (s): Promise<PullDetail> => {
          const { data: pr } = await s.octokit.rest.pulls.get(p);
          const head_status = await combinedStatus(s, pr.head.sha);
          return {
            ...pullSummary(pr as GitHubPullLike),
            body: clipBody(pr.body),
            merged: pr.merged,
            mergeable: pr.mergeable,
            mergeable_state: pr.mergeable_state ?? null,
            commits: pr.commits,
            additions: pr.additions,
            deletions: pr.deletions,
            changed_files: pr.changed_files,
            head_status,
          };
        }),
    }),
    defineAction({
      id: 'github.list_pull_comments',
      level: 1,
      description:
        'List the conversation and review comments of a pull request, merged oldest first, each with its kind, up to `limit` (default 100).',
      params: listPullCommentsParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `list comments of pull request ${p.owner}/${p.repo}#${p.pull_number}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { pull_requests: 'read', issues: 'read' }, async ({ octokit }): Promise<ListResult<PullComment>> => {
          const { owner: o, repo: r, pull_number, since, per_page } = p;
          // Both lists come oldest first (issue comments always; review comments when asked), so
          // one merge by creation time orders them, reading each only as far as `limit` needs.
          const conversation = itemsOf(octokit.paginate.iterator(octokit.rest.issues.listComments, { owner: o, repo: r, issue_number: pull_number, since, per_page }));
          const review = itemsOf(
            octokit.paginate.iterator(octokit.rest.pulls.listReviewComments, { owner: o, repo: r, pull_number, sort: 'created', direction: 'asc', since, per_page }),
          );
          const merged = mergeAscending<PullComment>(
            (async function* () {
              for await (const c of conversation) yield pullComment('issue', c as GitHubCommentLike);
            })(),
            (async function* () {
              for await (const c of review) yield pullComment('review', c as GitHubCommentLike);
            })(),
            (c) => c.created_at,
          );
          return collect(merged, p.limit, (c) => c);
        }),
    }),
    defineAction({
      id: 'github.create_pull',
      level: 2,
      description: 'Open a pull request from a head branch into a base branch.',
      params: createPullParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `create pull request ${p.owner}/${p.repo} ${p.head} -> ${p.base}: ${p.title.slice(0, 80)}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { pull_requests: 'write' }, async ({ octokit }): Promise<CreatedPull> => {
          const { data: pr } = await octokit.rest.pulls.create(p);
          const summary = pullSummary(pr as GitHubPullLike);
          return { number: pr.number, state: pr.state, draft: summary.draft, head: summary.head, base: summary.base, html_url: pr.html_url };
        }),
    }),
    defineAction({
      id: 'github.merge_pull',
      level: 3,
      description:
        'Merge a pull request; refused (412) unless it is open and mergeable, every check and status on its head passed, and its base branch is protected.',
      params: mergePullParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `merge pull request ${p.owner}/${p.repo}#${p.pull_number}${p.merge_method ? ` (${p.merge_method})` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { pull_requests: 'write', contents: 'write', checks: 'read', statuses: 'read' }, async (s): Promise<MergeResult> => {
          const { data: pr } = await s.octokit.rest.pulls.get({ owner: p.owner, repo: p.repo, pull_number: p.pull_number });
          const unmet = await unmetMergePreconditions(s, pr);
          if (unmet.length > 0) {
            throw new ApiError(
              'precondition_failed',
              `Pull request #${p.pull_number} was not merged: ${unmet.map((u) => u.detail).join('; ')}.`,
              { unmet },
            );
          }
          // `sha` makes GitHub refuse (409) if the head moved after the checks above.
          const { data } = await s.octokit.rest.pulls.merge({ ...p, sha: pr.head.sha });
          return { merged: data.merged, sha: data.sha, message: data.message };
        }),
    }),
  ];
}
