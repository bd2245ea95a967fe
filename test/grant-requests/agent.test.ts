/**
 * The agent's side of access requests, through the project's signing client (`requestAccess`,
 * `accessRequest`) and through the agents' MCP server's access tools (`src/mcp/tools/access.ts`),
 * driven by the MCP SDK's own `Client` over its in-memory transport against a real broker on an
 * ephemeral port.
 */
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../src/client/index.js';
import { createMcpServer } from '../../src/mcp/server.js';
import type { TestBroker } from '../helpers/harness.js';
import { bearer, startGrantsBroker, tokenFor } from '../grants/helpers.js';

let broker: TestBroker;
let operator: string;
let mcp: Client;

beforeAll(async () => {
  broker = await startGrantsBroker();
  operator = await tokenFor(broker, 'operator', 'olga');
  const server = createMcpServer(broker.client('developer'), { warn: () => {} });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  mcp = new Client({ name: 'test-agent', version: '1.0.0' });
  await mcp.connect(clientSide);
});
afterAll(async () => {
  await mcp?.close();
  await broker.stop();
});

type ToolResult = Awaited<ReturnType<Client['callTool']>>;
const text = (r: ToolResult) => JSON.parse((r.content as { text: string }[])[0]!.text) as Record<string, any>;

describe('the signing client', () => {
  it('requestAccess asks as its group, replays under the same key, and accessRequest shows the outcome', async () => {
    const client = broker.client('developer');
    const body = { provider: 'ops', level: 1 as const, allowed_actions: ['ops.read'], resources: ['acme/*'], ttl_s: 600, justification: 'read the dashboards' };
    const asked = await client.requestAccess(body, 'client-key-1');
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body).toMatchObject({ group: 'developer', status: 'pending' });
    const again = await client.requestAccess(body, 'client-key-1');
    expect([again.body.id, again.headers.get('idempotent-replayed')]).toEqual([asked.body.id, 'true']);

    await bearer(broker, operator, 'POST', `/v1/grant-requests/${asked.body.id}/approve`, { json: {} });
    const seen = await client.accessRequest(asked.body.id);
    expect(seen.body).toMatchObject({ status: 'approved', grant_status: 'active' });
    expect((await broker.client('security').accessRequest(asked.body.id)).status).toBe(404);
  });
});

describe('the request_access and get_access_request MCP tools', () => {
  it('are listed with their schemas', async () => {
    const { tools } = await mcp.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['get_access_request', 'request_access']));
    expect(byName.get('request_access')!.inputSchema.required).toEqual(expect.arrayContaining(['ttl_s', 'justification']));
    expect(byName.get('get_access_request')!.annotations?.readOnlyHint).toBe(true);
  });

  it('round trip: the agent asks, an operator approves, the agent reads the outcome, and the action is allowed', async () => {
    const asked = await mcp.callTool({
      name: 'request_access',
      arguments: { provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/api'], ttl_s: 3600, justification: 'deploy the fix for #7', request_id: 'mcp-ask-1' },
    });
    expect(asked.isError, JSON.stringify(asked.content)).toBeFalsy();
    const request = text(asked);
    expect(request).toMatchObject({ group: 'developer', level: 2, status: 'pending' });
    const retried = text(await mcp.callTool({ name: 'request_access', arguments: { provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/api'], ttl_s: 3600, justification: 'deploy the fix for #7', request_id: 'mcp-ask-1' } }));
    expect(retried.id).toBe(request.id);

    const approved = await bearer(broker, operator, 'POST', `/v1/grant-requests/${request.id}/approve`, { json: { reason: 'ok' } });
    expect(approved.status).toBe(200);
    const outcome = text(await mcp.callTool({ name: 'get_access_request', arguments: { id: request.id } }));
    expect(outcome).toMatchObject({ status: 'approved', decision_reason: 'ok', grant_id: approved.body.grant.id, grant_status: 'active' });
    const caps = (await broker.client('developer').get('/v1/ext/capabilities')).body.actions as { action: string; allowed: boolean }[];
    expect(caps.find((a) => a.action === 'ops.write')).toMatchObject({ allowed: true });
  });

  it("gives the broker's refusal as an error result with its code, and rejects input outside the schema", async () => {
    const above = await mcp.callTool({ name: 'request_access', arguments: { provider: 'ops', level: 3, allowed_actions: ['ops.deploy'], resources: ['acme/api'], ttl_s: 3600, justification: 'production' } });
    expect(above.isError).toBe(true);
    expect(text(above)).toMatchObject({ code: 'level_above_ceiling', ceiling: 2 });
    const invalid = await mcp.callTool({ name: 'request_access', arguments: { provider: 'ops', ttl_s: -1, justification: '' } });
    expect(invalid.isError).toBe(true);
    expect(JSON.stringify(invalid.content)).toMatch(/ttl_s|justification/);
  });

  it('names the URL and the cause when the broker cannot be reached', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const key = broker.deps.keys.current('developer');
    const server = createMcpServer(new BrokerClient({ baseUrl: `http://127.0.0.1:${port}`, credential: { keyid: key.keyid, secret: key.secret } }), { warn: () => {} });
    const [c, s] = InMemoryTransport.createLinkedPair();
    await server.connect(s);
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(c);
    try {
      const res = await client.callTool({ name: 'get_access_request', arguments: { id: 'grq_x' } });
      expect(res.isError).toBe(true);
      expect(text(res)).toMatchObject({ code: 'broker_unreachable', url: `http://127.0.0.1:${port}/v1/grant-requests/grq_x`, cause: 'ECONNREFUSED' });
    } finally {
      await client.close();
    }
  });
});
