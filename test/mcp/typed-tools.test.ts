/**
 * The typed action tools of `broker mcp`: one tool per action the group may call now, as real
 * `broker mcp` processes list and run them (the MCP SDK's client on stdio) against a real broker
 * whose GitHub is @octokit/fixtures-server replaying the recorded `get-repository` traffic, renamed
 * from `octokit-fixture-org/hello-world` to `acme/api` (the repository the grants scope).
 *
 * developer holds only L1 on `acme/*` for GitHub; security holds L1 for the test provider `echo`.
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { recorded, type FixtureEntry } from '../fixtures/github/build.js';
import { approveTwice, grant } from '../calls/helpers.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { FIXTURE_TOKEN, startGitHubFixtures, type GitHubFixtures, type Scenario } from '../providers/github/fixtures.js';
import { bodyOf, callRequests, echoProvider, ok, startAgent, textOf, untilAnnounced, type Agent } from './helpers.js';

/** A recorded scenario moved to another owner and repository (content-length follows the body). */
function renamed(entries: FixtureEntry[], owner: string, repo: string): FixtureEntry[] {
  const text = JSON.stringify(entries).replaceAll('octokit-fixture-org/hello-world', `${owner}/${repo}`).replaceAll('octokit-fixture-org', owner).replaceAll('hello-world', repo);
  const out = JSON.parse(text) as FixtureEntry[];
  for (const e of out) if (e.headers['content-length'] !== undefined) e.headers['content-length'] = String(Buffer.byteLength(JSON.stringify(e.response)));
  return out;
}

/** The developer's tools besides the typed ones (its role: a working group). */
const DEVELOPER_STATIC = [
  'whoami',
  'ext_capabilities',
  'ext_call',
  'ext_get_call',
  'ext_list_calls',
  'request_access',
  'get_access_request',
  'gov_list_pipeline',
  'gov_task_context',
  'gov_transition',
  'gov_update_dod',
  'gov_list_dispatches',
  'gov_ack_dispatch',
];

let fx: GitHubFixtures;
let sc: Scenario;
let broker: TestBroker;
let developer: Agent;
let security: Agent;
let main: Agent;
let l1: { id: string; expires_at: string | null };
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  fx = await startGitHubFixtures({ 'acme-get-repository': renamed(recorded('get-repository'), 'acme', 'api') });
  sc = await fx.load('acme-get-repository');
  for (const k of ['GITHUB_TOKEN', 'GITHUB_API_URL'] as const) saved[k] = process.env[k];
  process.env['GITHUB_TOKEN'] = FIXTURE_TOKEN;
  process.env['GITHUB_API_URL'] = sc.url;
  broker = await startBroker({ providers: [echoProvider] });
  l1 = await grant(broker, { group: 'developer', provider: 'github', level: 1, resources: ['acme/*'], ttl_s: 3600 });
  await grant(broker, { group: 'security', provider: 'echo', level: 1, ttl_s: 60 });
  [developer, security, main] = await Promise.all([startAgent(broker, 'developer', 200), startAgent(broker, 'security', 200), startAgent(broker, 'main', 200)]);
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await Promise.all([developer?.close(), security?.close(), main?.close()]);
  await broker?.stop();
  await fx?.close();
});

/** The catalog's actions of `provider` up to `level`, as the tool names the server should list. */
const catalogTools = (provider: string, level: number) =>
  broker.deps.catalog
    .list()
    .filter((a) => a.id.startsWith(`${provider}.`) && a.level <= level)
    .map((a) => a.id.replace('.', '_'));
const typed = (tools: Tool[]) => tools.filter((t) => /^(github|cloudlogs|echo|test)_/.test(t.name));

/**
 * Arguments a tool's input schema accepts, built from the schema alone: `acme`/`api` for owner and
 * repository, and for any other required member a value of its type.
 */
function validArgs(tool: Tool): Record<string, unknown> {
  const props = (tool.inputSchema.properties ?? {}) as Record<string, { type?: string }>;
  const args: Record<string, unknown> = {};
  for (const name of tool.inputSchema.required ?? []) {
    if (name === 'owner') args[name] = 'acme';
    else if (name === 'repo') args[name] = 'api';
    else args[name] = props[name]?.type === 'integer' || props[name]?.type === 'number' ? 1 : 'bug';
  }
  return args;
}

describe('an agent with only L1 on acme/*', () => {
  it('lists exactly the tools it may call: its role tools and one typed tool per L1 GitHub action, with schemas', async () => {
    const tools = await developer.tools();
    const names = tools.map((t) => t.name);
    const expected = catalogTools('github', 1);
    expect(expected).toContain('github_get_repo');
    expect(names).toEqual([...DEVELOPER_STATIC, ...expected]);
    for (const name of ['github_create_issue', 'github_merge_pull', 'echo_say', 'cloudlogs_query_entries']) expect(names).not.toContain(name);

    for (const tool of typed(tools)) {
      const action = broker.deps.catalog.get(tool.name.replace('_', '.'))!.action;
      const params = z.toJSONSchema(action.params, { io: 'input' }) as { properties: Record<string, unknown>; required?: string[] };
      // The action's params as zod's JSON Schema, plus the idempotency key; no task_id at L1.
      expect(tool.inputSchema).toMatchObject({ type: 'object', additionalProperties: false });
      expect(tool.inputSchema.properties).toEqual({ ...params.properties, request_id: expect.objectContaining({ type: 'string' }) });
      expect(tool.inputSchema.required).toEqual(params.required);
      expect(tool.description).toContain(`L1 (read); grant ${l1.id}: resources acme/*; expires ${l1.expires_at}.`);
      expect(tool.annotations).toEqual({ title: action.id, readOnlyHint: true, destructiveHint: false, idempotentHint: action.idempotent, openWorldHint: true });
      expect(tool.outputSchema).toMatchObject({ type: 'object', properties: { request_id: {}, status: {}, result: {}, receipt: {} } });
    }
    const getRepo = tools.find((t) => t.name === 'github_get_repo')!;
    expect(getRepo.inputSchema.required).toEqual(['owner', 'repo']);
  });

  it('completes a github_get_repo through the typed tool (recorded GitHub traffic)', async () => {
    await developer.tools(); // the client checks structuredContent against the listed output schema
    const res = await developer.call('github_get_repo', { owner: 'acme', repo: 'api', request_id: 'mcp-get-repo-1' });
    const body = ok(res);
    expect(res.structuredContent).toEqual(body);
    expect(body).toMatchObject({ request_id: 'mcp-get-repo-1', status: 'succeeded', action: 'github.get_repo', result: { full_name: 'acme/api', default_branch: 'master' } });
    expect(body.receipt.steps.map((s: { step: string }) => s.step)).toContain('resource');
    expect(await sc.pending()).toEqual([]);
    // The same request_id replays the stored call: GitHub is not asked again.
    expect(ok(await developer.call('github_get_repo', { owner: 'acme', repo: 'api', request_id: 'mcp-get-repo-1' }))).toMatchObject({ request_id: 'mcp-get-repo-1', status: 'succeeded' });
  });
});

describe('two groups with different grants', () => {
  it('list different typed tools, and each runs only its own', async () => {
    const dev = typed(await developer.tools()).map((t) => t.name);
    const sec = typed(await security.tools()).map((t) => t.name);
    expect(sec).toEqual(['echo_say']);
    expect(dev).toEqual(catalogTools('github', 1));
    expect(dev.filter((n) => sec.includes(n))).toEqual([]);
    expect(ok(await security.call('echo_say', { text: 'hi' }))).toMatchObject({ status: 'succeeded', result: { said: 'hi' } });
  });

  it("each listed tool's schema accepts a valid call; the server refuses an invalid one with a clear message and sends nothing", async () => {
    const validator = new AjvJsonSchemaValidator();
    for (const agent of [developer, security]) {
      for (const tool of typed(await agent.tools())) {
        const valid = validArgs(tool);
        expect(validator.getValidator(tool.inputSchema as never)(valid), `${tool.name} ${JSON.stringify(valid)}`).toMatchObject({ valid: true });
        const sent = callRequests(broker).length;
        const unknown = await agent.call(tool.name, { ...valid, bogus_argument: 1 });
        expect(unknown.isError, tool.name).toBe(true);
        expect(textOf(unknown)).toMatch(new RegExp(`^Input validation error: Invalid arguments for tool ${tool.name}: unknown argument bogus_argument; \\S+ takes `));
        const missing = tool.inputSchema.required?.[0];
        if (missing !== undefined) {
          const { [missing]: _dropped, ...incomplete } = valid;
          const res = await agent.call(tool.name, incomplete);
          expect(res.isError, tool.name).toBe(true);
          expect(textOf(res)).toContain(`must have required property '${missing}'`);
        }
        expect(callRequests(broker).length, `${tool.name}: nothing reaches the broker`).toBe(sent);
      }
    }
    const bad = await developer.call('github_get_repo', { owner: 'acme/evil', repo: 'api' });
    expect(textOf(bad)).toBe('Input validation error: Invalid arguments for tool github_get_repo: owner must match pattern "^[A-Za-z0-9][A-Za-z0-9-]{0,38}$"');
    expect(textOf(await developer.call('github_get_repo', { owner: 'acme', repo: 'api', request_id: 'no spaces' }))).toContain('request_id');
    // The call the schema accepts does run (the recorded get_repo above); echo_say too.
    expect(ok(await security.call('echo_say', validArgs(typed(await security.tools())[0]!)))).toMatchObject({ status: 'succeeded' });
  });
});

describe('an action outside the grants', () => {
  it('is not listed; calling it anyway returns the refusal HTTP gives: code, what to do and the failed step before the receipt', async () => {
    const params = { owner: 'acme', repo: 'api', title: 'From an agent' };
    expect((await developer.tools()).map((t) => t.name)).not.toContain('github_create_issue');
    const res = await developer.call('github_create_issue', { ...params, request_id: 'mcp-unlisted-1' });
    expect(res.isError).toBe(true);
    const refusal = bodyOf(res);
    const http = await broker.client('developer').post('/v1/ext/calls', { action: 'github.create_issue', params }, { idempotencyKey: 'http-unlisted-1' });
    expect(http.status).toBe(403);
    expect(refusal).toMatchObject({ code: http.body.code, detail: http.body.detail, status: 403, failed_step: 'level' });
    expect(refusal.code).toBe('insufficient_level');
    expect(refusal.what_to_do).toMatch(/^The grant's level is below the action's: ask for it with request_access \(an operator decides\) at the action's level\.$/);
    expect(refusal.receipt.steps).toEqual(http.body.receipt.steps);
    const keys = Object.keys(refusal);
    expect(keys.slice(0, 4)).toEqual(['code', 'what_to_do', 'failed_step', 'detail']);
    expect(keys.at(-1)).toBe('receipt');

    // Params the action refuses: the broker's validation_failed, as over HTTP (nothing checked locally).
    const invalid = bodyOf(await developer.call('github_create_issue', { owner: 'acme/evil', repo: 'api', title: 'x' }));
    expect(invalid).toMatchObject({ code: 'validation_failed', failed_step: 'request', what_to_do: 'Fix the arguments that `issues` names and call again.' });
    // A tool no action has is an MCP error.
    await expect(developer.call('github_no_such_action', {})).rejects.toThrow(/Tool github_no_such_action not found/);
  });
});

describe('the list stays current', () => {
  it('list_changed arrives after a grant, and after its revocation', async () => {
    await developer.tools();
    let seen = developer.changes();
    const l2 = await grant(broker, { group: 'developer', provider: 'github', level: 2, resources: ['acme/api'], ttl_s: 3600 });
    const after = await untilAnnounced(developer, seen, (names) => names.includes('github_create_issue'));
    expect(after).not.toContain('github_merge_pull');
    const create = (await developer.tools()).find((t) => t.name === 'github_create_issue')!;
    expect(create.inputSchema.properties).toHaveProperty('task_id');
    expect(create.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    expect(create.description).toContain(`L2 (write); grant ${l2.id}: resources acme/api; expires ${l2.expires_at}. Needs task_id`);

    seen = developer.changes();
    const revoked = await broker.client('main').post(`/v1/grants/${l2.id}/revoke`, { reason: 'done' });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const back = await untilAnnounced(developer, seen, (names) => !names.includes('github_create_issue'));
    expect(typed(await developer.tools()).map((t) => t.name)).toEqual(catalogTools('github', 1));
    expect(back).toContain('github_get_repo');
  });

  it('list_changed arrives when an L3 grant gets its two approvals: the merge tool appears, destructive', async () => {
    await main.tools();
    const l3 = await grant(broker, { group: 'main', provider: 'github', level: 3, resources: ['acme/*'], ttl_s: 3600 });
    expect((await main.tools()).map((t) => t.name)).not.toContain('github_merge_pull'); // approval_pending
    const seen = main.changes();
    await approveTwice(broker, l3);
    await untilAnnounced(main, seen, (names) => names.includes('github_merge_pull'));
    const merge = (await main.tools()).find((t) => t.name === 'github_merge_pull')!;
    expect(merge.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(merge.description).toContain('L3 (production)');
  });

  it('list_changed arrives when a grant expires', async () => {
    await security.tools();
    const seen = security.changes();
    broker.clock.advance(61_000);
    await untilAnnounced(security, seen, (names) => !names.includes('echo_say'));
    const res = bodyOf(await security.call('echo_say', { text: 'late' }));
    expect(res).toMatchObject({ code: 'capability_expired', failed_step: 'expiry' });
  });
});
