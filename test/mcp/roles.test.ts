/**
 * The governance tools of `broker mcp` follow the group's role in the kernel: main creates,
 * triages and assigns tasks and decides the gates other than Security; security decides the
 * Security gate; developer acknowledges its dispatches, moves its tasks and updates DoD items.
 * Real `broker mcp` processes (one per group, the MCP SDK's client on stdio) walk one SECURITY
 * task from INBOX to DONE through them against a real broker; every structured result is checked
 * by the client against the tool's output schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';
import { bodyOf, ok, startAgent, type Agent } from './helpers.js';

/** The tools each group lists with no grant (recorded in the closing note of the change). */
const COMMON = ['whoami', 'ext_capabilities', 'ext_call', 'ext_get_call', 'ext_list_calls', 'request_access', 'get_access_request', 'gov_list_pipeline', 'gov_task_context'];
const DISPATCH = ['gov_list_dispatches', 'gov_ack_dispatch'];
const EXPECTED: Record<string, string[]> = {
  main: [...COMMON, 'gov_create_task', 'gov_assign', 'gov_transition', ...DISPATCH, 'gov_approve'],
  developer: [...COMMON, 'gov_transition', 'gov_update_dod', ...DISPATCH],
  security: [...COMMON, ...DISPATCH, 'gov_approve'],
};

let broker: TestBroker;
const agents: Record<string, Agent> = {};

beforeAll(async () => {
  broker = await startBroker();
  for (const group of ['main', 'developer', 'security']) agents[group] = await startAgent(broker, group);
});
afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.close()));
  await broker?.stop();
});

describe('role tools', () => {
  it('each group lists the tools of its role, every one with an output schema', async () => {
    for (const [group, expected] of Object.entries(EXPECTED)) {
      const tools = await agents[group]!.tools();
      expect(tools.map((t) => t.name), group).toEqual(expected);
      for (const t of tools) expect(t.outputSchema, `${group} ${t.name}`).toMatchObject({ type: 'object' });
    }
    const approve = async (group: string) => (await agents[group]!.tools()).find((t) => t.name === 'gov_approve')!.description;
    expect(await approve('main')).toContain('This group decides the RevOps, Claims, Product gates.');
    expect(await approve('security')).toContain('This group decides the Security gate.');
  });

  it('walk one SECURITY task through its roles: main creates, triages, assigns; developer works it; security decides the gate; main closes it', async () => {
    const { main, developer, security } = agents as Record<'main' | 'developer' | 'security', Agent>;
    await Promise.all([main.tools(), developer.tools(), security.tools()]);

    const created = ok(await main.call('gov_create_task', { title: 'Rotate the deploy key', type: 'SECURITY', definition_of_done: ['key rotated'], request_id: 'roles-create-1' }));
    expect(created).toMatchObject({ state: 'INBOX', gate: 'Security', gate_status: 'pending', created_by: 'main' });
    // The same request_id answers the same task.
    expect(ok(await main.call('gov_create_task', { title: 'Rotate the deploy key', type: 'SECURITY', definition_of_done: ['key rotated'], request_id: 'roles-create-1' })).id).toBe(created.id);
    const task_id = created.id as string;
    expect(ok(await main.call('gov_transition', { task_id, to: 'TRIAGED' }))).toMatchObject({ state: 'TRIAGED' });
    expect(ok(await main.call('gov_assign', { task_id, group: 'developer' }))).toMatchObject({ state: 'READY', assigned_group: 'developer' });
    const listed = ok(await main.call('gov_list_pipeline', { state: 'READY' })).data as { id: string }[];
    expect(listed.map((t) => t.id)).toContain(task_id);

    await runDispatchOnce(broker.deps);
    const dispatch = (ok(await developer.call('gov_list_dispatches', {})).data as { id: string; task_id: string; kind: string }[]).find((d) => d.task_id === task_id)!;
    expect(dispatch).toMatchObject({ kind: 'execute' });
    expect(ok(await developer.call('gov_ack_dispatch', { dispatch_id: dispatch.id }))).toMatchObject({ status: 'acked' });
    expect(ok(await developer.call('gov_update_dod', { task_id, items: [{ id: 1, done: true }], docs_updated: true }))).toMatchObject({ docs_updated: true });
    expect(ok(await developer.call('gov_transition', { task_id, to: 'REVIEW' }))).toMatchObject({ state: 'REVIEW' });

    await runDispatchOnce(broker.deps);
    const gate = (ok(await security.call('gov_list_dispatches', {})).data as { id: string; task_id: string; kind: string }[]).find((d) => d.task_id === task_id)!;
    expect(gate).toMatchObject({ kind: 'approve' });
    ok(await security.call('gov_ack_dispatch', { dispatch_id: gate.id }));
    // main does not decide the Security gate: the broker refuses, whatever tool it is sent from.
    expect(bodyOf(await main.call('gov_approve', { task_id, decision: 'approve' }))).toMatchObject({ code: 'forbidden' });
    expect(ok(await security.call('gov_approve', { task_id, decision: 'approve', reason: 'rotation verified' }))).toMatchObject({ gate_status: 'approved' });
    expect(ok(await main.call('gov_transition', { task_id, to: 'DONE' }))).toMatchObject({ state: 'DONE' });
    const context = ok(await developer.call('gov_task_context', { task_id }));
    expect(context.gate_decisions).toMatchObject([{ gate: 'Security', decision: 'approved', actor: 'security' }]);
  });

  it("a tool outside the group's role is not listed, and calling it gets the broker's refusal", async () => {
    const { developer, security } = agents as Record<'developer' | 'security', Agent>;
    const refused = bodyOf(await developer.call('gov_create_task', { title: 'Not mine to file', type: 'BUG' }));
    expect(refused).toMatchObject({ code: 'forbidden', detail: 'Only main creates tasks.' });
    expect(refused.what_to_do).toBe('This group may not do that; the detail says who may, so ask that group (or main).');
    expect(refused).not.toHaveProperty('failed_step');
    expect(bodyOf(await security.call('gov_assign', { task_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', group: 'developer' }))).toMatchObject({ code: 'not_found' });
  });
});
