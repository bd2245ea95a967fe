/**
 * The agents' MCP server as an agent runs it: a real `broker mcp` process on stdio, driven by the
 * MCP SDK's client, signing with an exported `.ipc_secret` against a real broker.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAction, type Provider } from '../../src/providers/contract.js';
import { exportSecretFile } from '../../src/modules/identity/keys.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';

const echo: Provider = {
  name: 'echo',
  unavailableReason: () => null,
  actions: [
    defineAction({
      id: 'echo.say',
      level: 1,
      description: 'Echoes its input (test only).',
      params: z.strictObject({ text: z.string().max(100) }),
      resource: () => 'echo',
      idempotent: true,
      summarize: (p) => `say ${p.text.length} chars`,
      execute: async (p) => ({ said: p.text }),
    }),
  ],
};

let broker: TestBroker;
let mcp: Client;

beforeAll(async () => {
  broker = await startBroker({ providers: [echo] });
  const dir = tempDir();
  const secretFile = exportSecretFile(dir, broker.deps.keys.current('developer'));
  const grant = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'echo', level: 1, reason: 'MCP test' });
  expect(grant.status).toBe(201);
  mcp = new Client({ name: 'test-agent', version: '1.0.0' });
  await mcp.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--secret', secretFile, '--url', broker.url],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    }),
  );
});
afterAll(async () => {
  await mcp?.close();
  await broker.stop();
});

const text = (r: Awaited<ReturnType<Client['callTool']>>) => JSON.parse((r.content as { text: string }[])[0]!.text) as Record<string, any>;

describe('broker mcp', () => {
  it("lists the developer's tools: the generic ext_* ones, its role's gov_* ones and one typed tool per action it may call", async () => {
    const { tools } = await mcp.listTools();
    expect(tools.map((t) => t.name)).toEqual([
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
      'echo_say',
    ]);
  });

  it('the earlier names (list_capabilities, call_action, get_call, list_calls) still call their tools, unlisted', async () => {
    const caps = text(await mcp.callTool({ name: 'list_capabilities', arguments: {} }));
    expect(caps).toMatchObject({ group: 'developer' });
    expect(caps.actions.find((a: { action: string }) => a.action === 'echo.say')).toMatchObject({ allowed: true, params_schema: { type: 'object', required: ['text'] } });
  });

  it('signs as the group of the secret file', async () => {
    expect(text(await mcp.callTool({ name: 'whoami', arguments: {} }))).toEqual({ group: 'developer', key_version: 1, keyid: 'developer:1' });
  });

  it('runs an action through the broker and reads the stored call back', async () => {
    const res = await mcp.callTool({ name: 'call_action', arguments: { action: 'echo.say', params: { text: 'hi' }, request_id: 'mcp-1' } });
    expect(res.isError).toBeFalsy();
    expect(text(res)).toMatchObject({ request_id: 'mcp-1', status: 'succeeded', result: { said: 'hi' } });
    const again = await mcp.callTool({ name: 'get_call', arguments: { request_id: 'mcp-1' } });
    expect(text(again)).toMatchObject({ request_id: 'mcp-1' });
  });

  it('lists the group\'s own calls with filters, and refuses a bad filter before sending it', async () => {
    await mcp.callTool({ name: 'call_action', arguments: { action: 'echo.say', params: { text: 'listed' }, request_id: 'mcp-list-1' } });
    const all = text(await mcp.callTool({ name: 'list_calls', arguments: { limit: 50 } })) as { data: { request_id: string; status: string; group: string }[] };
    expect(all.data.map((c) => c.request_id)).toContain('mcp-list-1');
    expect(new Set(all.data.map((c) => c.group))).toEqual(new Set(['developer']));
    const lost = text(await mcp.callTool({ name: 'list_calls', arguments: { status: 'unknown_outcome' } })) as { data: unknown[] };
    expect(lost.data).toEqual([]);
    const one = text(await mcp.callTool({ name: 'list_calls', arguments: { limit: 1 } })) as { data: unknown[] };
    expect(one.data).toHaveLength(1);
    for (const bad of [{ limit: 0 }, { status: 'lost' }, { before: 'yesterday' }]) {
      const res = await mcp.callTool({ name: 'list_calls', arguments: bad });
      expect(res.isError, JSON.stringify(bad)).toBe(true);
      expect(JSON.stringify(res.content)).toContain('Input validation error');
    }
  });

  it('returns a denial as an error result carrying the problem code', async () => {
    const res = await mcp.callTool({ name: 'call_action', arguments: { action: 'echo.say', params: { text: 'x'.repeat(101) } } });
    expect(res.isError).toBe(true);
    expect(text(res).code).toBe('validation_failed');
  });
});
