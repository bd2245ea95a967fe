/**
 * The GitHub provider: 20 actions run on the host through Octokit with the host's
 * credential. Every action's resource is `owner/repo`, except `list_repos`'s (`owner/*`, or `*`
 * without an owner); results are trimmed, redacted and capped.
 *
 * L1 read: list_repos, get_repo, get_content, list_issues, get_issue, list_pulls, get_pull,
 * list_pull_comments, search_issues, list_branches, list_workflow_runs. L2 write: create_issue,
 * comment_issue, add_labels, close_issue, create_branch, put_file, create_pull. L3 production:
 * merge_pull, dispatch_workflow.
 */
import type { Provider } from '../contract.js';
import { branchActions } from './actions/branches.js';
import { issueActions } from './actions/issues.js';
import { pullActions } from './actions/pulls.js';
import { repoActions } from './actions/repo.js';
import { workflowActions } from './actions/workflows.js';
import { GitHubClient, githubSettingsFromEnv, type GitHubSettings } from './client.js';

export { githubSettingsFromEnv, type GitHubSettings } from './client.js';

/**
 * Builds the provider from host settings (see {@link githubSettingsFromEnv} for the variables).
 * Without a credential it still lists its actions, and `unavailableReason()` says what is missing
 * (calls then answer 503 `provider_unavailable`).
 */
export function createGithubProvider(settings: GitHubSettings): Provider {
  const gh = new GitHubClient(settings);
  return {
    name: 'github',
    actions: [...repoActions(gh), ...issueActions(gh), ...pullActions(gh), ...branchActions(gh), ...workflowActions(gh)],
    unavailableReason: () => settings.unavailable,
  };
}

/** {@link createGithubProvider} over `GITHUB_*` variables of `env`. */
export function githubProviderFromEnv(env: Record<string, string | undefined>): Provider {
  return createGithubProvider(githubSettingsFromEnv(env));
}
