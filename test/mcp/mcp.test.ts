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
  it('lists the broker tools', async () => {
    const { tools } = await mcp.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'ack_dispatch',
      'call_action',
      'decide_gate',
      'get_call',
      'list_calls',
      'list_capabilities',
      'list_dispatches',
      'task_context',
      'transition_task',
      'update_dod',
      'whoami',
    ]);
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
