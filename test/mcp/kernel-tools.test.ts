/**
 * The kernel tools of the agents' MCP server (`ack_dispatch`, `transition_task`, `update_dod`,
 * `decide_gate`) as a dispatched agent uses them: real `broker mcp` processes on stdio (one per
 * group), driven by the MCP SDK's client, against a real broker whose tasks the kernel helpers set up.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { exportSecretFile } from '../../src/modules/identity/keys.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';
import { Kernel } from '../kernel/helpers.js';

type ToolResult = Awaited<ReturnType<Client['callTool']>>;

let broker: TestBroker;
let kernel: Kernel;
let developer: Client;
let security: Client;

/** Starts `broker mcp` signing as `group` and connects an MCP client to it. */
async function agent(group: string): Promise<Client> {
  const secretFile = exportSecretFile(tempDir(), broker.deps.keys.current(group));
  const client = new Client({ name: `test-agent-${group}`, version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--secret', secretFile, '--url', broker.url], cwd: REPO_ROOT, stderr: 'pipe' }),
  );
  return client;
}

beforeAll(async () => {
  broker = await startBroker();
  kernel = new Kernel(broker);
  [developer, security] = await Promise.all([agent('developer'), agent('security')]);
});
afterAll(async () => {
  await developer?.close();
  await security?.close();
  await broker.stop();
});

const call = (client: Client, name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args });
const textOf = (r: ToolResult) => (r.content as { text: string }[])[0]!.text;
const body = (r: ToolResult) => JSON.parse(textOf(r)) as Record<string, any>;
/** The body of a successful tool result; fails with the text otherwise. */
const ok = (r: ToolResult) => {
  expect(r.isError, textOf(r)).toBeFalsy();
  return body(r);
};
/** The problem `code` of an error result. */
const errorCode = (r: ToolResult) => {
  expect(r.isError).toBe(true);
  return body(r).code as string;
};
/** The paths of the requests the broker logged so far, but for the servers' polls of the capabilities. */
const requestPaths = () =>
  broker.logs
    .map((l) => JSON.parse(l) as { msg?: string; path?: string })
    .filter((l) => l.msg === 'request' && l.path !== '/v1/ext/capabilities')
    .map((l) => l.path);

describe('broker mcp: kernel tools', () => {
  it('lists the kernel tools of each role, annotated as writes (only the ack idempotent)', async () => {
    const { tools } = await developer.listTools();
    const hints = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));
    expect(hints['gov_ack_dispatch']).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: true });
    for (const name of ['gov_transition', 'gov_update_dod']) expect(hints[name]).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    expect(hints['gov_approve']).toBeUndefined();
    const transition = tools.find((t) => t.name === 'gov_transition')!;
    expect(transition.inputSchema.required).toEqual(['task_id', 'to']);
    const approve = (await security.listTools()).tools.find((t) => t.name === 'gov_approve')!;
    expect(approve.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    expect(approve.inputSchema.required).toEqual(['task_id', 'decision']);
  });

  it('a dispatched agent acks its dispatch (twice), moves its task DOING → REVIEW without a version and ticks a DoD item', async () => {
    const t = await kernel.taskIn('READY', { definition_of_done: ['tests pass', 'changelog'] });
    await runDispatchOnce(broker.deps);
    const pending = ok(await call(developer, 'list_dispatches', {})).data as { id: string; task_id: string; kind: string }[];
    const dispatch = pending.find((d) => d.task_id === t.id)!;
    expect(dispatch).toMatchObject({ kind: 'execute' });

    const acked = ok(await call(developer, 'ack_dispatch', { dispatch_id: dispatch.id }));
    expect(acked).toMatchObject({ id: dispatch.id, status: 'acked' });
    expect(ok(await call(developer, 'ack_dispatch', { dispatch_id: dispatch.id }))).toEqual(acked);

    const doing = (await kernel.get(t.id)).task;
    expect(doing.state).toBe('DOING');
    const review = ok(await call(developer, 'transition_task', { task_id: t.id, to: 'REVIEW' }));
    expect(review).toMatchObject({ state: 'REVIEW', executor_group: 'developer', version: doing.version + 1 });

    const ticked = ok(await call(developer, 'update_dod', { task_id: t.id, items: [{ id: 1, done: true }] }));
    expect(ticked.definition_of_done).toEqual([
      { id: 1, text: 'tests pass', done: true },
      { id: 2, text: 'changelog', done: false },
    ]);

    const context = ok(await call(developer, 'task_context', { task_id: t.id }));
    expect(context.task).toMatchObject({ state: 'REVIEW', version: review.version + 1, definition_of_done: [{ id: 1, done: true }, { id: 2, done: false }] });
    const byAgent = (await kernel.audit(t.id)).filter((a) => a.actor === 'developer');
    expect(byAgent.map((a) => a.kind)).toEqual(['dispatch.acked', 'task.transition', 'task.dod_updated']);
    expect(byAgent[0]!.detail).toMatchObject({ dispatch_id: dispatch.id });
  });

  it('moves a task to BLOCKED with a reason at an explicit version, and back', async () => {
    const t = await kernel.taskIn('DOING');
    const blocked = ok(await call(developer, 'transition_task', { task_id: t.id, to: 'BLOCKED', reason: 'waiting on the vendor', version: t.task.version }));
    expect(blocked).toMatchObject({ state: 'BLOCKED', blocked_from: 'DOING', blocked_reason: 'waiting on the vendor' });
    expect(ok(await call(developer, 'transition_task', { task_id: t.id, to: 'DOING' }))).toMatchObject({ state: 'DOING' });
  });

  it('a stale version is a precondition_failed error result and changes nothing', async () => {
    const t = await kernel.taskIn('DOING', { definition_of_done: ['tests pass'] });
    const before = (await kernel.audit(t.id)).length;
    const stale = await call(developer, 'update_dod', { task_id: t.id, items: [{ id: 1, done: true }], version: t.task.version - 1 });
    expect(errorCode(stale)).toBe('precondition_failed');
    expect(body(stale).current_etag).toBe(t.etag);
    expect(errorCode(await call(developer, 'transition_task', { task_id: t.id, to: 'REVIEW', version: t.task.version - 1 }))).toBe('precondition_failed');
    expect((await kernel.get(t.id)).task).toEqual(t.task);
    expect((await kernel.audit(t.id))).toHaveLength(before);
  });

  it("returns the kernel's refusals as error results: illegal_transition, a missing BLOCKED reason, an unknown task", async () => {
    const t = await kernel.taskIn('DOING');
    const illegal = await call(developer, 'transition_task', { task_id: t.id, to: 'DONE' });
    expect(errorCode(illegal)).toBe('illegal_transition');
    expect(body(illegal).allowed).toEqual(expect.arrayContaining(['REVIEW', 'BLOCKED']));
    expect(errorCode(await call(developer, 'transition_task', { task_id: t.id, to: 'BLOCKED' }))).toBe('validation_failed');
    expect(errorCode(await call(developer, 'update_dod', { task_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', docs_updated: true }))).toBe('not_found');
    expect(errorCode(await call(developer, 'ack_dispatch', { dispatch_id: 'no-such-dispatch' }))).toBe('not_found');
    expect((await kernel.get(t.id)).task).toEqual(t.task);
  });

  it('decide_gate (gov_approve): the executor gets separation_of_powers, the approver group approves', async () => {
    const t = await kernel.taskIn('APPROVAL', { type: 'SECURITY' });
    expect(t.task).toMatchObject({ gate: 'Security', gate_status: 'pending', executor_group: 'developer' });
    expect(errorCode(await call(developer, 'decide_gate', { task_id: t.id, decision: 'approve' }))).toBe('separation_of_powers');
    const approved = ok(await call(security, 'decide_gate', { task_id: t.id, decision: 'approve', reason: 'threat model reviewed' }));
    expect(approved).toMatchObject({ state: 'APPROVAL', gate_status: 'approved', version: t.task.version + 1 });
    const decision = (await kernel.audit(t.id)).find((a) => a.kind === 'task.gate_decision')!;
    expect(decision).toMatchObject({ actor: 'security', detail: { gate: 'Security', decision: 'approved', reason: 'threat model reviewed' } });
  });

  it("refuses bad input by the tool's schema, sending nothing to the broker", async () => {
    const t = await kernel.taskIn('APPROVAL', { type: 'SECURITY' });
    const sent = requestPaths().length;
    const bad: [string, Record<string, unknown>][] = [
      ['transition_task', { to: 'REVIEW' }],
      ['transition_task', { task_id: t.id, to: 'SHIPPED' }],
      ['transition_task', { task_id: 'not-a-task-id', to: 'REVIEW' }],
      ['decide_gate', { task_id: t.id, decision: 'maybe' }],
      ['decide_gate', { task_id: t.id, decision: 'approve', reason: '   ' }],
      ['update_dod', { task_id: t.id, items: [{ id: 0, done: true }] }],
      ['update_dod', { task_id: t.id, docs_updated: true, version: 0 }],
      ['ack_dispatch', {}],
      ['gov_approve', { task_id: t.id, decision: 'approve', notes: 'an argument the tool does not take' }],
      ['gov_update_dod', { task_id: t.id }],
    ];
    for (const [name, args] of bad) {
      const res = await call(security, name, args);
      expect(res.isError, `${name} ${JSON.stringify(args)}`).toBe(true);
      expect(textOf(res)).toContain('Input validation error');
    }
    ok(await call(security, 'whoami', {}));
    expect(requestPaths().slice(sent)).toEqual(['/v1/whoami']);
    expect((await kernel.get(t.id)).task).toEqual(t.task);
  });
});
