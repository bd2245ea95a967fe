/**
 * One retry layer (issue 4): a GitHub action run through the call path's `runAction` sends each
 * request once per attempt, so an idempotent read that keeps failing reaches GitHub three times
 * and a write once. Each scenario holds exactly that many failing answers; one more request would
 * get the fixtures server's 404 and leave the scenario's status in the outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubProviderFromEnv } from '../../../src/providers/github/index.js';
import { IDEMPOTENT_RETRIES, runAction as runBrokerAction, type Outcome } from '../../../src/modules/calls/execute.js';
import { FIXTURE_TOKEN, ORG, startGitHubFixtures, testContext, type GitHubFixtures, type Scenario } from './fixtures.js';

let fx: GitHubFixtures;
beforeAll(async () => {
  fx = await startGitHubFixtures();
});
afterAll(() => fx.close());

/** Loads `name` and runs action `id` once through the broker's call path, retries included. */
async function runScenario(name: string, id: string, params: unknown): Promise<{ sc: Scenario; outcome: Outcome }> {
  const sc = await fx.load(name);
  const provider = githubProviderFromEnv({ GITHUB_TOKEN: FIXTURE_TOKEN, GITHUB_API_URL: sc.url });
  const action = provider.actions.find((a) => a.id === id)!;
  const { signal: _signal, ...ctx } = testContext();
  const outcome = await runBrokerAction(action, action.params.parse(params), ctx, 10_000);
  return { sc, outcome };
}

describe('GitHub requests are retried only by the call path', () => {
  it('an idempotent read failing with 503 reaches GitHub once per attempt, three times in all', async () => {
    const { sc, outcome } = await runScenario('get-issue-unavailable', 'github.get_issue', { owner: ORG, repo: 'get-issue', issue_number: 1 });
    expect(outcome.kind).toBe('failed');
    expect(outcome.attempts).toBe(1 + IDEMPOTENT_RETRIES);
    expect(outcome.attempts).toBe(3);
    expect(outcome.kind !== 'succeeded' && outcome.error).toMatchObject({
      code: 'provider_error',
      extensions: { provider_status: 503, provider_code: 'server_error', details: { message: 'Service Unavailable' } },
    });
    expect(await sc.pending()).toEqual([]);
  });

  it('a write failing with 502 reaches GitHub once and is not retried', async () => {
    const { sc, outcome } = await runScenario('comment-issue-bad-gateway', 'github.comment_issue', {
      owner: ORG,
      repo: 'comment-issue',
      issue_number: 1,
      body: 'Reproduced on main; fix in progress.',
    });
    expect(outcome.kind).toBe('failed');
    expect(outcome.attempts).toBe(1);
    expect(outcome.kind !== 'succeeded' && outcome.error).toMatchObject({
      code: 'provider_error',
      extensions: { provider_status: 502, provider_code: 'server_error', details: { message: 'Server Error' } },
    });
    expect(await sc.pending()).toEqual([]);
  });
});
