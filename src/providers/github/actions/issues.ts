/**
 * Issues: `list_issues`, `get_issue`, `search_issues` (L1); `create_issue`, `comment_issue`,
 * `add_labels`, `close_issue` (L2). GitHub's issue endpoints serve pull requests too, so comments
 * and labels work on both; `close_issue` refuses a pull request (412).
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../contract.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { GitHubClient } from '../client.js';
import {
  clipBody,
  collect,
  issueSummary,
  labelNames,
  type GitHubIssueLike,
  type IssueSummary,
  type ListResult,
} from '../results.js';
import { body, isoTime, issueNumber, label, limit, login, perPage, repoResource, repoTarget, title } from '../schemas.js';

/** Result of `github.get_issue`: the summary plus body (clipped to 16 KiB), state reason, lock and milestone. */
export interface IssueDetail extends IssueSummary {
  body: string | null;
  state_reason: string | null;
  locked: boolean;
  milestone: string | null;
}

/** Result of `github.search_issues`. */
export interface SearchResult extends ListResult<IssueSummary> {
  /** GitHub's count of all matches in the repository. */
  total_count: number;
  incomplete_results: boolean;
  /** The query sent to GitHub, with the repository qualifier the broker forced. */
  query: string;
}

/** Result of `github.create_issue`. */
export interface CreatedIssue {
  number: number;
  title: string;
  state: string;
  html_url: string;
}

/** Result of `github.comment_issue`. */
export interface CreatedComment {
  id: number;
  html_url: string;
  created_at: string;
}

const listIssuesParams = z.strictObject({
  ...repoTarget,
  state: z.enum(['open', 'closed', 'all']).optional(),
  labels: z.array(label).min(1).max(20).optional(),
  /** A login, `none` or `*`. */
  assignee: z.union([login, z.literal('none'), z.literal('*')]).optional(),
  creator: login.optional(),
  mentioned: login.optional(),
  since: isoTime.optional(),
  sort: z.enum(['created', 'updated', 'comments']).optional(),
  direction: z.enum(['asc', 'desc']).optional(),
  per_page: perPage.optional(),
  limit,
});

const issueParams = z.strictObject({ ...repoTarget, issue_number: issueNumber });

const SCOPE_QUALIFIER = /(^|\s)-?(?:repo|org|user|owner)\s*:\s*(?:"[^"]*"|\S*)/gi;

/** Whether `query` uses boolean operators or grouping outside quotes, which could widen a forced qualifier. */
function hasBooleanSyntax(query: string): boolean {
  const unquoted = query.replace(/"[^"]*"/g, ' ');
  return /\b(?:OR|AND)\b/.test(unquoted) || /[()]/.test(unquoted);
}

/**
 * The search query actually sent: the caller's query with every `repo:`, `org:`, `user:` and
 * `owner:` qualifier (negated or not) removed, then `repo:<owner>/<repo>` appended.
 */
export function scopedQuery(query: string, owner: string, repo: string): string {
  const stripped = query.replace(SCOPE_QUALIFIER, ' ').replace(/\s+/g, ' ').trim();
  return `${stripped} repo:${owner}/${repo}`.trim();
}

const searchParams = z.strictObject({
  ...repoTarget,
  /** GitHub issue search syntax; scope qualifiers are replaced and `OR`/`AND`/parentheses refused. */
  query: z
    .string()
    .trim()
    .min(1)
    .max(256)
    .refine((q) => !hasBooleanSyntax(q), 'must not use OR, AND or parentheses (the repository scope is forced)'),
  sort: z.enum(['comments', 'reactions', 'created', 'updated', 'interactions']).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  per_page: perPage.optional(),
  limit,
});

const createIssueParams = z.strictObject({
  ...repoTarget,
  title,
  body: body.optional(),
  labels: z.array(label).max(20).optional(),
  assignees: z.array(login).max(10).optional(),
});

const commentParams = z.strictObject({ ...repoTarget, issue_number: issueNumber, body: body.min(1) });

const addLabelsParams = z.strictObject({ ...repoTarget, issue_number: issueNumber, labels: z.array(label).min(1).max(20) });

/** Result of `github.close_issue`: the issue's state after the call. */
export interface IssueState {
  number: number;
  /** `open` or `closed`. */
  state: string;
  /** `completed`, `not_planned`, `reopened`, or null (never closed). */
  state_reason: string | null;
  closed_at: string | null;
  html_url: string;
  /** False when the issue already was in the asked state (nothing was written). */
  changed: boolean;
}

const STATE_REASONS = ['completed', 'not_planned', 'reopened'] as const;

const closeIssueParams = z
  .strictObject({
    ...repoTarget,
    issue_number: issueNumber,
    /** `closed` (the default) closes the issue, `open` reopens it. */
    state: z.enum(['closed', 'open']).default('closed'),
    /** To close: `completed` (the default) or `not_planned`; to reopen: `reopened` (the default). */
    state_reason: z.enum(STATE_REASONS).optional(),
  })
  .refine((p) => p.state_reason === undefined || (p.state === 'open') === (p.state_reason === 'reopened'), {
    message: 'state_reason must be completed or not_planned to close, reopened to reopen',
    path: ['state_reason'],
  });

const issueState = (i: GitHubIssueLike, changed: boolean): IssueState => ({
  number: i.number,
  state: i.state,
  state_reason: i.state_reason ?? null,
  closed_at: i.closed_at ?? null,
  html_url: i.html_url,
  changed,
});

const issueDetail = (i: GitHubIssueLike): IssueDetail => ({
  ...issueSummary(i),
  body: clipBody(i.body),
  state_reason: i.state_reason ?? null,
  locked: i.locked ?? false,
  milestone: i.milestone?.title ?? null,
});

const sameRepo = (item: { repository_url?: string }, owner: string, repo: string): boolean =>
  (item.repository_url ?? '').toLowerCase().endsWith(`/repos/${owner}/${repo}`.toLowerCase());

/** The issue actions. */
export function issueActions(gh: GitHubClient): ActionDefinition<any, unknown>[] {
  return [
    defineAction({
      id: 'github.list_issues',
      level: 1,
      description: 'List issues (and pull requests) with filters, across pages up to `limit` (default 100).',
      params: listIssuesParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `list issues ${p.owner}/${p.repo}${p.state ? ` state=${p.state}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'read' }, async ({ octokit }): Promise<ListResult<IssueSummary>> => {
          const { limit: max, labels, ...filters } = p;
          const pages = octokit.paginate.iterator(octokit.rest.issues.listForRepo, { ...filters, labels: labels?.join(',') });
          return collect(pages, max, (i) => issueSummary(i as GitHubIssueLike));
        }),
    }),
    defineAction({
      id: 'github.get_issue',
      level: 1,
      description: 'Read one issue (or pull request as an issue) with its body.',
      params: issueParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `get issue ${p.owner}/${p.repo}#${p.issue_number}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'read' }, async ({ octokit }): Promise<IssueDetail> => {
          const { data } = await octokit.rest.issues.get(p);
          return issueDetail(data as GitHubIssueLike);
        }),
    }),
    defineAction({
      id: 'github.search_issues',
      level: 1,
      description: 'Search issues and pull requests of this repository (the repo: qualifier is forced).',
      params: searchParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `search issues ${p.owner}/${p.repo}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'read', pull_requests: 'read' }, async ({ octokit }): Promise<SearchResult> => {
          const q = scopedQuery(p.query, p.owner, p.repo);
          let total = 0;
          let incomplete = false;
          const pages = octokit.paginate.iterator(octokit.rest.search.issuesAndPullRequests, {
            q,
            sort: p.sort,
            order: p.order,
            per_page: p.per_page,
          });
          const counted = (async function* () {
            for await (const page of pages) {
              const extra = page.data as unknown as { total_count?: number; incomplete_results?: boolean };
              total = extra.total_count ?? total;
              incomplete = incomplete || extra.incomplete_results === true;
              // Defence in depth: only items of the granted repository leave the broker.
              yield { data: page.data.filter((i) => sameRepo(i, p.owner, p.repo)) };
            }
          })();
          const list = await collect(counted, p.limit, (i) => issueSummary(i as GitHubIssueLike));
          return { total_count: total, incomplete_results: incomplete, query: q, ...list };
        }),
    }),
    defineAction({
      id: 'github.create_issue',
      level: 2,
      description: 'Open an issue with a title, optional body, labels and assignees.',
      params: createIssueParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `create issue in ${p.owner}/${p.repo}: ${p.title.slice(0, 80)}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'write' }, async ({ octokit }): Promise<CreatedIssue> => {
          const { data } = await octokit.rest.issues.create(p);
          return { number: data.number, title: data.title, state: data.state, html_url: data.html_url };
        }),
    }),
    defineAction({
      id: 'github.comment_issue',
      level: 2,
      description: 'Comment on an issue or a pull request.',
      params: commentParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `comment on ${p.owner}/${p.repo}#${p.issue_number} (${p.body.length} chars)`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'write', pull_requests: 'write' }, async ({ octokit }): Promise<CreatedComment> => {
          const { data } = await octokit.rest.issues.createComment(p);
          return { id: data.id, html_url: data.html_url, created_at: data.created_at };
        }),
    }),
    defineAction({
      id: 'github.add_labels',
      level: 2,
      description: 'Add labels to an issue or a pull request; answers the labels it now has.',
      params: addLabelsParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `add labels ${p.labels.join(', ')} to ${p.owner}/${p.repo}#${p.issue_number}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'write', pull_requests: 'write' }, async ({ octokit }): Promise<{ labels: string[] }> => {
          const { data } = await octokit.rest.issues.addLabels(p);
          return { labels: labelNames(data) };
        }),
    }),
    defineAction({
      id: 'github.close_issue',
      level: 2,
      description:
        'Close an issue as completed or not_planned, or reopen it; an issue already in that state is answered as it is, unchanged.',
      params: closeIssueParams,
      // Setting a state is idempotent in effect: a retry finds the state reached and writes nothing.
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `${p.state === 'open' ? 'reopen' : 'close'} issue ${p.owner}/${p.repo}#${p.issue_number}${p.state_reason ? ` as ${p.state_reason}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { issues: 'write' }, async ({ octokit }): Promise<IssueState> => {
          const target = { owner: p.owner, repo: p.repo, issue_number: p.issue_number };
          const reason = p.state_reason ?? (p.state === 'closed' ? 'completed' : 'reopened');
          const { data: current } = await octokit.rest.issues.get(target);
          if (current.pull_request) {
            throw new ApiError(
              'precondition_failed',
              `#${p.issue_number} of ${p.owner}/${p.repo} is a pull request; github.close_issue closes and reopens issues only.`,
            );
          }
          // Reached already: closed with the asked reason, or open (whatever reason it was reopened with).
          if (current.state === p.state && (p.state === 'open' || current.state_reason === reason)) return issueState(current as GitHubIssueLike, false);
          const { data } = await octokit.rest.issues.update({ ...target, state: p.state, state_reason: reason });
          return issueState(data as GitHubIssueLike, true);
        }),
    }),
  ];
}
