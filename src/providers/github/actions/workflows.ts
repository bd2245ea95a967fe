/**
 * GitHub Actions: `github.list_workflow_runs` (L1) and `github.dispatch_workflow` (L3, the deploy
 * action: runs a `workflow_dispatch` workflow at a ref with inputs).
 */
import { z } from 'zod';
import { defineAction, type ActionDefinition } from '../../contract.js';
import type { GitHubClient } from '../client.js';
import { collect, type ListResult } from '../results.js';
import { branch, limit, login, perPage, repoResource, repoTarget, sha } from '../schemas.js';

/** One workflow run in `github.list_workflow_runs`. */
export interface RunSummary {
  id: number;
  name: string | null;
  display_title: string;
  event: string;
  /** `queued`, `in_progress`, `completed`, … */
  status: string | null;
  /** `success`, `failure`, `cancelled`, … once completed. */
  conclusion: string | null;
  head_branch: string | null;
  head_sha: string;
  run_number: number;
  run_attempt: number | null;
  workflow_id: number;
  actor: string | null;
  html_url: string;
  created_at: string;
  updated_at: string;
}

/** Result of `github.list_workflow_runs`. */
export interface RunList extends ListResult<RunSummary> {
  /** GitHub's count of all runs matching the filters. */
  total_count: number;
}

/** Result of `github.dispatch_workflow`. */
export interface DispatchResult {
  dispatched: true;
  workflow: string | number;
  ref: string;
}

const RUN_STATUSES = [
  'completed', 'action_required', 'cancelled', 'failure', 'neutral', 'skipped', 'stale', 'success',
  'timed_out', 'in_progress', 'queued', 'requested', 'waiting', 'pending',
] as const;

const listRunsParams = z.strictObject({
  ...repoTarget,
  branch: branch.optional(),
  event: z.string().regex(/^[a-z_]{1,50}$/, 'must be a GitHub event name such as push or workflow_dispatch').optional(),
  status: z.enum(RUN_STATUSES).optional(),
  actor: login.optional(),
  head_sha: sha.optional(),
  per_page: perPage.optional(),
  limit,
});

/** A workflow file name (`deploy.yml`) or its numeric id. */
const workflowId = z.union([
  z.string().regex(/^[A-Za-z0-9._-]{1,100}\.ya?ml$/, 'must be a workflow file name such as deploy.yml'),
  z.number().int().positive(),
]);

const inputValue = z.union([z.string().max(4096), z.number(), z.boolean()]);

const dispatchParams = z.strictObject({
  ...repoTarget,
  workflow_id: workflowId,
  /** The branch or tag to run the workflow at (tag names follow the same rules as branch names). */
  ref: branch,
  /** The workflow's `workflow_dispatch` inputs (GitHub accepts at most 25). */
  inputs: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,99}$/, 'input names are identifiers'), inputValue)
    .refine((r) => Object.keys(r).length <= 25, 'at most 25 inputs')
    .optional(),
});

/** The GitHub Actions actions. */
export function workflowActions(gh: GitHubClient): ActionDefinition<any, unknown>[] {
  return [
    defineAction({
      id: 'github.list_workflow_runs',
      level: 1,
      description: 'List recent GitHub Actions workflow runs, filtered by branch, event, status, actor or commit.',
      params: listRunsParams,
      idempotent: true,
      resource: repoResource,
      summarize: (p) => `list workflow runs ${p.owner}/${p.repo}${p.branch ? ` branch=${p.branch}` : ''}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { actions: 'read' }, async ({ octokit }): Promise<RunList> => {
          const { limit: max, ...filters } = p;
          let total = 0;
          const pages = octokit.paginate.iterator(octokit.rest.actions.listWorkflowRunsForRepo, filters);
          const counted = (async function* () {
            for await (const page of pages) {
              total = (page.data as unknown as { total_count?: number }).total_count ?? total;
              yield page;
            }
          })();
          const list = await collect(counted, max, (r) => ({
            id: r.id,
            name: r.name ?? null,
            display_title: r.display_title,
            event: r.event,
            status: r.status,
            conclusion: r.conclusion,
            head_branch: r.head_branch,
            head_sha: r.head_sha,
            run_number: r.run_number,
            run_attempt: r.run_attempt ?? null,
            workflow_id: r.workflow_id,
            actor: r.actor?.login ?? null,
            html_url: r.html_url,
            created_at: r.created_at,
            updated_at: r.updated_at,
          }));
          return { total_count: total, ...list };
        }),
    }),
    defineAction({
      id: 'github.dispatch_workflow',
      level: 3,
      description: 'Run a workflow_dispatch workflow (e.g. deploy.yml) at a branch or tag with inputs.',
      params: dispatchParams,
      idempotent: false,
      resource: repoResource,
      summarize: (p) => `dispatch workflow ${p.workflow_id} in ${p.owner}/${p.repo} at ${p.ref}`,
      execute: (p, ctx) =>
        gh.run(ctx, p, { actions: 'write' }, async ({ octokit }): Promise<DispatchResult> => {
          await octokit.rest.actions.createWorkflowDispatch(p);
          return { dispatched: true, workflow: p.workflow_id, ref: p.ref };
        }),
    }),
  ];
}
