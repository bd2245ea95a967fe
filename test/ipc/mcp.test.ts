/**
 * `broker mcp --ipc DIR`: the agents' MCP server as a real process, driven by the MCP SDK's own
 * client over stdio, reaching a real broker through the group's IPC directory instead of HTTP;
 * and, with no broker serving the directory, an error result that names the cause.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSecretFile } from '../../src/modules/identity/keys.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';
import { grant } from '../calls/helpers.js';
import { testProvider } from '../calls/provider.js';
import { names, startIpcBroker, type IpcBroker } from './helpers.js';

let b: IpcBroker;
const clients: Client[] = [];

/** Connects the SDK client to `broker mcp --ipc <dir>` signing as `group`. */
async function mcpOver(dir: string, group: string, extra: string[] = []): Promise<Client> {
  const secretFile = exportSecretFile(tempDir(), b.broker.deps.keys.current(group));
  const client = new Client({ name: 'ipc-agent', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--secret', secretFile, '--ipc', dir, ...extra], cwd: REPO_ROOT, stderr: 'pipe' }));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  b = await startIpcBroker({ providers: [testProvider().provider] });
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await b.stop();
});

const text = (r: Awaited<ReturnType<Client['callTool']>>) => JSON.parse((r.content as { text: string }[])[0]!.text) as Record<string, any>;

describe('broker mcp --ipc', () => {
  it('signs as its group and runs a call through the IPC directory, then reads it back', async () => {
    await grant(b.broker, { level: 1 });
    const mcp = await mcpOver(b.dir('developer'), 'developer');
    expect(text(await mcp.callTool({ name: 'whoami', arguments: {} }))).toEqual({ group: 'developer', key_version: 1, keyid: 'developer:1' });
    const res = await mcp.callTool({ name: 'call_action', arguments: { action: 'test.read', params: { resource: 'acme/api' }, request_id: 'mcp-ipc-1' } });
    expect(res.isError).toBeFalsy();
    expect(text(res)).toMatchObject({ request_id: 'mcp-ipc-1', status: 'succeeded', result: { resource: 'acme/api', attempt: 1 } });
    const again = await mcp.callTool({ name: 'call_action', arguments: { action: 'test.read', params: { resource: 'acme/api' }, request_id: 'mcp-ipc-1' } });
    expect(text(again)).toEqual(text(res)); // the replay
    expect(text(await mcp.callTool({ name: 'get_call', arguments: { request_id: 'mcp-ipc-1' } }))).toMatchObject({ request_id: 'mcp-ipc-1', group: 'developer', status: 'succeeded' });
    expect(text(await mcp.callTool({ name: 'list_calls', arguments: {} })).data.map((c: { request_id: string }) => c.request_id)).toEqual(['mcp-ipc-1']);
    const refused = await mcp.callTool({ name: 'call_action', arguments: { action: 'test.write', params: {} } });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatchObject({ code: 'insufficient_level' });
    // The client takes its answers away; nothing is left behind.
    expect(names(b, 'developer', 'responses')).toEqual([]);
    expect(names(b, 'developer', 'requests')).toEqual([]);
    expect(names(b, 'developer', 'processing')).toEqual([]);
  });

  it('says the broker is unreachable, naming the cause, when no broker serves the directory; the unread request is withdrawn', async () => {
    const lonely = tempDir('broker-ipc-lonely-');
    for (const sub of ['requests', 'responses', 'rejected']) fs.mkdirSync(path.join(lonely, sub));
    const mcp = await mcpOver(lonely, 'developer', ['--ipc-timeout', '300']);
    const res = await mcp.callTool({ name: 'call_action', arguments: { action: 'test.read', request_id: 'nobody-home' } });
    expect(res.isError).toBe(true);
    const body = text(res);
    expect(body).toMatchObject({ code: 'broker_unreachable', cause: 'IPC_TIMEOUT', request_id: 'nobody-home' });
    expect(body.detail).toMatch(/withdrawn unread/);
    // The call's request file is gone; the server's own capability polls (GETs, withdrawn after
    // their own timeout) may come and go meanwhile, so only files carrying this call are looked for.
    const left = fs.readdirSync(path.join(lonely, 'requests')).filter((n) => {
      try {
        return fs.readFileSync(path.join(lonely, 'requests', n), 'utf8').includes('nobody-home');
      } catch {
        return false; // withdrawn between the listing and the read
      }
    });
    expect(left).toEqual([]);
  });
});
