/**
 * The story `npm run demo` plays against a running broker, with the project's own signing client
 * (`src/client/`) for the agent groups, an operator's bearer token for the HTTP API, and the
 * `broker` CLI for what an operator or an approver types:
 * 1. an operator grants `developer` L1; 2. the agent makes a signed read; 3. a task reaches DOING
 * (created, triaged and assigned by `main`, dispatched by the kernel's loop) and the agent writes
 * under L2; 4. refused calls show their refusal; 5. an L3 grant gets two approvals from two
 * approver groups, becomes active, and `main` merges under it; 6. `broker audit verify` passes.
 * Each request's status, verdict and code is checked by the {@link Reporter}: the first one that
 * answers otherwise stops the story with a {@link DemoFailure}.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BrokerClient, type BrokerResponse } from '../../src/client/index.js';
import { demoRecordings, ORG, type RecordedGitHub } from './github.js';
import { runBrokerCli } from './processes.js';
import type { Reporter } from './report.js';

/** What the story runs against. */
export interface Stage {
  /** The broker's origin. */
  url: string;
  /** An operator bearer token (`broker token --role operator`). */
  operatorToken: string;
  main: BrokerClient;
  developer: BrokerClient;
  /** The `BROKER_*` environment of the CLI verbs run on the broker host. */
  cliEnv: Record<string, string>;
  /** A scratch directory for the approvers' keys, the grant file and the JWS files. */
  workDir: string;
  github: RecordedGitHub;
  report: Reporter;
}

/** Abort a request that gets no answer within this many ms, so the demo never hangs. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long the dispatch loop may take to move the task to DOING, in ms. */
const DISPATCH_WAIT_MS = 20_000;

/** Sends a request with the operator's bearer token (POSTs with an `Idempotency-Key`). */
async function asOperator(stage: Stage, method: string, urlPath: string, body?: unknown, contentType = 'application/json'): Promise<BrokerResponse<any>> {
  const headers: Record<string, string> = { authorization: `Bearer ${stage.operatorToken}` };
  if (body !== undefined) Object.assign(headers, { 'content-type': contentType, 'idempotency-key': randomUUID() });
  const res = await fetch(new URL(urlPath, stage.url), {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) };
}

/** A call's verdict: the receipt's decision, the problem code, and a note (the result or the refusal). */
function callOutcome(res: BrokerResponse<any>, summarize: (result: any) => string): { verdict: string | null; code: string | null; note: string } {
  const b = res.body ?? {};
  const verdict = b.receipt?.decision ?? null;
  if (res.status === 200) return { verdict, code: null, note: `call ${b.status}: ${summarize(b.result)}` };
  return { verdict, code: b.code ?? null, note: String(b.detail ?? JSON.stringify(b)) };
}

/** Sends `POST /v1/ext/calls` as a group and checks the answer. */
async function call(
  stage: Stage,
  step: number,
  what: string,
  client: BrokerClient,
  body: { action: string; params: Record<string, unknown>; task_id?: string },
  expect: { status: number; verdict: string; code?: string },
  summarize: (result: any) => string = () => '',
): Promise<BrokerResponse<any>> {
  const res = await client.post('/v1/ext/calls', body);
  const o = callOutcome(res, summarize);
  stage.report.check({
    step,
    what,
    via: `POST /v1/ext/calls as ${client.group} (signed): ${body.action}${body.task_id ? ' with task_id' : ''}`,
    status: res.status,
    expected: expect.status,
    ...o,
    ok: o.verdict === expect.verdict && o.code === (expect.code ?? null),
  });
  return res;
}

/** Creates a grant as the operator and checks its status. */
async function grant(stage: Stage, step: number, what: string, terms: Record<string, unknown>, status: string): Promise<any> {
  const res = await asOperator(stage, 'POST', '/v1/grants', terms);
  const g = res.body ?? {};
  stage.report.check({
    step,
    what,
    via: 'POST /v1/grants as operator (bearer token)',
    status: res.status,
    expected: 201,
    verdict: g.status ?? null,
    code: g.code ?? null,
    note: res.status === 201 ? `${g.id}: L${g.level} ${g.provider} for ${g.group}, actions ${JSON.stringify(g.allowed_actions)}, resources ${JSON.stringify(g.resources)}` : String(g.detail),
    ok: g.status === status,
  });
  return g;
}

/** Runs a CLI verb on the broker host and checks it exits 0. */
async function cli(stage: Stage, step: number, what: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; note?: (stdout: string) => string } = {}) {
  const run = await runBrokerCli(args, opts.env ?? stage.cliEnv, opts.cwd);
  stage.report.check({
    step,
    what,
    via: `broker ${args.map((a) => (a.startsWith(stage.workDir) ? path.relative(stage.workDir, a) : a)).join(' ')}`,
    status: run.code,
    expected: 0,
    verdict: run.code === 0 ? 'ok' : 'failed',
    code: null,
    note: run.code === 0 ? (opts.note?.(run.stdout) ?? '') : run.stderr.trim().split('\n').slice(-3).join(' / '),
  });
  return run;
}

/** Moves a task as `client` and checks it reached `to`. */
async function transition(stage: Stage, client: BrokerClient, id: string, etag: string, body: Record<string, unknown>, what: string): Promise<string> {
  const res = await client.post(`/v1/tasks/${id}/transition`, body, { headers: { 'if-match': etag } });
  stage.report.check({
    step: 3,
    what,
    via: `POST /v1/tasks/{id}/transition as ${client.group} (signed): ${JSON.stringify(body)}`,
    status: res.status,
    expected: 200,
    verdict: res.body?.state ?? null,
    code: res.body?.code ?? null,
    note: res.status === 200 ? `task ${id} is ${res.body.state}` : String(res.body?.detail),
    ok: res.body?.state === body['to'],
  });
  return res.headers.get('etag') ?? '';
}

/** Step 3's task: `main` files it, triages it and readies it for `developer`; the dispatch loop moves it to DOING. */
async function taskInDoing(stage: Stage): Promise<string> {
  const { main, developer, report } = stage;
  const created = await main.post('/v1/tasks', { title: 'Answer issue 1 of comment-issue', type: 'BUG' });
  report.check({
    step: 3,
    what: 'main files a task',
    via: 'POST /v1/tasks as main (signed)',
    status: created.status,
    expected: 201,
    verdict: created.body?.state ?? null,
    code: created.body?.code ?? null,
    note: created.status === 201 ? `task ${created.body.id}` : String(created.body?.detail),
    ok: created.body?.state === 'INBOX',
  });
  const id: string = created.body.id;
  let etag = created.headers.get('etag') ?? '';
  etag = await transition(stage, main, id, etag, { to: 'TRIAGED' }, 'main triages it');
  await transition(stage, main, id, etag, { to: 'READY', assigned_group: 'developer' }, 'main assigns it to developer');

  // The kernel's dispatch loop (BROKER_DISPATCH_INTERVAL_MS) moves a READY task to DOING and
  // records an `execute` dispatch for its group: developer polls for it, as an agent would.
  const deadline = Date.now() + DISPATCH_WAIT_MS;
  let res: BrokerResponse<any>;
  let dispatch: any;
  for (;;) {
    res = await developer.get('/v1/dispatches', { query: { status: 'pending' } });
    dispatch = res.status === 200 ? (res.body.data as any[]).find((d) => d.task_id === id) : undefined;
    if (dispatch || res.status !== 200 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const task = await developer.get(`/v1/tasks/${id}`);
  report.check({
    step: 3,
    what: 'the dispatch loop moves it to DOING and dispatches developer',
    via: 'GET /v1/dispatches?status=pending as developer (signed)',
    status: res.status,
    expected: 200,
    verdict: task.body?.state ?? null,
    code: res.body?.code ?? null,
    note: dispatch ? `${dispatch.kind} dispatch ${dispatch.id} for ${dispatch.group}; task ${id} is ${task.body?.state}` : `no dispatch for task ${id} within ${DISPATCH_WAIT_MS} ms`,
    ok: dispatch?.kind === 'execute' && task.body?.state === 'DOING',
  });
  const ack = await developer.post(`/v1/dispatches/${dispatch.id}/ack`, {});
  report.check({
    step: 3,
    what: 'developer acknowledges the dispatch',
    via: 'POST /v1/dispatches/{id}/ack as developer (signed)',
    status: ack.status,
    expected: 200,
    verdict: ack.body?.status ?? null,
    code: ack.body?.code ?? null,
    note: '',
    ok: ack.body?.status === 'acked',
  });
  return id;
}

/** Submits an approver's JWS over HTTP as the operator and checks the outcome and the grant's status. */
async function submitApproval(stage: Stage, grantId: string, jwsFile: string, approver: string, outcome: string, status: string): Promise<void> {
  const res = await asOperator(stage, 'POST', `/v1/grants/${grantId}/approvals`, fs.readFileSync(jwsFile, 'utf8'), 'application/jose');
  stage.report.check({
    step: 5,
    what: `the operator submits ${approver}'s approval`,
    via: 'POST /v1/grants/{id}/approvals as operator (application/jose)',
    status: res.status,
    expected: 200,
    verdict: res.body?.outcome ?? null,
    code: res.body?.code ?? null,
    note: res.status === 200 ? `grant ${res.body.grant.status}, ${res.body.grant.approvals.length} approval(s)` : String(res.body?.detail),
    ok: res.body?.outcome === outcome && res.body?.grant?.status === status,
  });
}

/** Plays steps 1–6. @throws DemoFailure at the first check that does not answer as expected. */
export async function playStory(stage: Stage): Promise<void> {
  const { report, main, developer } = stage;
  const repo = (name: string) => ({ owner: ORG, repo: name });

  report.step(1, 'An operator grants developer L1 (reads) on the organisation\'s repositories');
  await grant(stage, 1, 'developer gets L1 on octokit-fixture-org/*', { group: 'developer', provider: 'github', level: 1, resources: [`${ORG}/*`], reason: 'read the code' }, 'active');

  report.step(2, 'The agent makes a signed read');
  await call(stage, 2, 'developer reads octokit-fixture-org/hello-world', developer, { action: 'github.get_repo', params: repo('hello-world') }, { status: 200, verdict: 'allowed' }, (r) => `${r.full_name}, default branch ${r.default_branch}`);

  report.step(3, 'A task reaches DOING and the agent writes under L2');
  await grant(
    stage,
    3,
    'developer gets L2 for one write, comment_issue, on one repository, for an hour',
    { group: 'developer', provider: 'github', level: 2, allowed_actions: ['github.comment_issue'], resources: [`${ORG}/comment-issue`], ttl_s: 3600, reason: 'answer issue 1' },
    'active',
  );
  const taskId = await taskInDoing(stage);
  const comment = { action: 'github.comment_issue', params: { ...repo('comment-issue'), issue_number: 1, body: 'Reproduced on main; fix in progress.' } };
  await call(stage, 3, 'developer comments on issue 1, coupled to its DOING task', developer, { ...comment, task_id: taskId }, { status: 200, verdict: 'allowed' }, (r) => `comment ${r.id} ${r.html_url}`);

  report.step(4, 'Refused calls say why (none of them reaches GitHub)');
  await call(stage, 4, 'developer writes without a task', developer, comment, { status: 403, verdict: 'denied', code: 'task_required' });
  await call(stage, 4, 'developer reads a repository outside its grants', developer, { action: 'github.get_repo', params: { owner: 'someone-else', repo: 'payroll' } }, { status: 403, verdict: 'denied', code: 'resource_out_of_scope' });
  const merge = { action: 'github.merge_pull', params: { ...repo('merge-pull'), pull_number: 1, merge_method: 'squash' }, task_id: taskId };
  await call(stage, 4, 'developer merges a pull request (an L3 action)', developer, merge, { status: 403, verdict: 'denied', code: 'insufficient_level' });

  report.step(5, 'An L3 grant gets two approvals from two approver groups');
  const l3 = await grant(
    stage,
    5,
    'main asks for L3 to merge pull requests of one repository, for an hour',
    { group: 'main', provider: 'github', level: 3, allowed_actions: ['github.merge_pull'], resources: [`${ORG}/merge-pull`], ttl_s: 3600, reason: 'release: merge pull 1' },
    'pending_approval',
  );
  await call(stage, 5, 'main merges before any approval', main, merge, { status: 403, verdict: 'denied', code: 'approval_pending' });
  const approvers = [
    { id: 'sam', group: 'security' },
    { id: 'raj', group: 'sre' },
  ];
  const at = (file: string) => path.join(stage.workDir, file);
  for (const a of approvers) {
    const keygen = await cli(stage, 5, `approver ${a.id} makes a key pair (the private key stays with ${a.id})`, ['approvers', 'keygen', '--id', a.id, '--out', at(`${a.id}.jwk`)]);
    fs.writeFileSync(at(`${a.id}.pub.jwk`), keygen.stdout);
    await cli(stage, 5, `the operator registers ${a.id} in approver group ${a.group}`, ['approvers', 'add', '--id', a.id, '--group', a.group, '--jwk', at(`${a.id}.pub.jwk`)], {
      note: (out) => `thumbprint ${(JSON.parse(out) as { thumbprint: string }).thumbprint}`,
    });
  }
  const fetched = await asOperator(stage, 'GET', `/v1/grants/${l3.id}`);
  report.check({ step: 5, what: 'the operator fetches the grant for the approvers', via: 'GET /v1/grants/{id} as operator', status: fetched.status, expected: 200, verdict: fetched.body?.status ?? null, code: fetched.body?.code ?? null, note: `digest ${fetched.body?.digest}` });
  fs.writeFileSync(at('grant.json'), JSON.stringify(fetched.body));
  for (const a of approvers) {
    // Offline, on the approver's own machine: no data directory, no database (none is given).
    await cli(stage, 5, `${a.id} signs the terms offline`, ['approve', '--grant-file', at('grant.json'), '--key', at(`${a.id}.jwk`), '--out', at(`${a.id}.jws`)], {
      env: {},
      cwd: stage.workDir,
      note: () => `compact JWS in ${a.id}.jws`,
    });
  }
  await submitApproval(stage, l3.id, at('sam.jws'), 'sam', 'recorded', 'pending_approval');
  await submitApproval(stage, l3.id, at('raj.jws'), 'raj', 'activated', 'active');
  await call(stage, 5, 'main merges pull request 1 under the active L3 grant', main, merge, { status: 200, verdict: 'allowed' }, (r) => `merged ${r.merged}, sha ${r.sha}`);

  report.step(6, 'The audit trail verifies');
  await cli(stage, 6, 'the operator recomputes the audit hash chain', ['audit', 'verify'], { note: (out) => out.trim().split('\n')[0] ?? '' });
  const pending = await stage.github.pending();
  report.check({
    step: 6,
    what: 'the recorded GitHub answered every recorded request once, and only those',
    via: 'the recorded GitHub: which recorded requests were not replayed',
    status: null,
    expected: null,
    verdict: pending.length === 0 ? 'ok' : 'pending',
    code: null,
    note: pending.length === 0 ? `all ${demoRecordings().length} recorded requests replayed (get_repo, comment_issue, merge_pull's reads and merge)` : `not replayed: ${pending.join(', ')}`,
    ok: pending.length === 0,
  });
}
