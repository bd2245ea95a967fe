/**
 * The agents' MCP server: exposes the broker to an AI agent as Model Context Protocol tools over
 * stdio. It holds only the group's HMAC secret (the mounted `.ipc_secret`), never a provider
 * credential: every tool is one signed request to the broker, which decides and executes.
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { BrokerClient, BrokerResponse } from '../client/index.js';

const RequestId = z.string().regex(/^[A-Za-z0-9._:-]{1,255}$/);

/**
 * Builds the MCP server over a signing client. Tools: `whoami`, `list_capabilities`,
 * `call_action`, `get_call`, `task_context`, `list_dispatches`. A broker error comes back as a
 * tool result with `isError: true` and the problem details (code, detail, receipt) as JSON text,
 * so the agent can act on the code; the process never throws on an HTTP error.
 */
export function createMcpServer(client: BrokerClient, version = '0.1.0'): McpServer {
  const server = new McpServer({ name: 'nanoclaw-broker', version });
  const read = { readOnlyHint: true, openWorldHint: false } as const;

  server.registerTool(
    'whoami',
    { description: 'The agent group and key version this server signs as.', annotations: read },
    async () => toResult(await client.get('/v1/whoami')),
  );
  server.registerTool(
    'list_capabilities',
    { description: 'Every broker action, and whether this group may call it now (and if not, the denial code).', annotations: read },
    async () => toResult(await client.get('/v1/ext/capabilities')),
  );
  server.registerTool(
    'call_action',
    {
      description:
        'Run a provider action (e.g. github.get_repo) on the host through the broker. L2+ actions need task_id of a task in DOING or APPROVAL assigned to this group. Reuse request_id to retry safely: the broker replays a finished call instead of running it twice.',
      inputSchema: {
        action: z.string().describe('Action id, `<provider>.<action>`'),
        params: z.record(z.string(), z.unknown()).default({}).describe("The action's parameters"),
        task_id: z.string().optional().describe('The coupled task (required for L2 and L3 actions)'),
        request_id: RequestId.optional().describe('Idempotency key; a new one is generated when absent'),
      },
      annotations: { openWorldHint: true },
    },
    async ({ action, params, task_id, request_id }) =>
      toResult(await client.post('/v1/ext/calls', { action, params, ...(task_id ? { task_id } : {}) }, { idempotencyKey: request_id ?? randomUUID() })),
  );
  server.registerTool(
    'get_call',
    { description: 'The stored outcome of one of this group’s calls, by request id.', inputSchema: { request_id: RequestId }, annotations: read },
    async ({ request_id }) => toResult(await client.get(`/v1/ext/calls/${encodeURIComponent(request_id)}`)),
  );
  server.registerTool(
    'task_context',
    { description: 'A task with its activity log, gate decisions and external calls: the working context of a dispatched agent.', inputSchema: { task_id: z.string().min(1) }, annotations: read },
    async ({ task_id }) => toResult(await client.get(`/v1/tasks/${encodeURIComponent(task_id)}/context`)),
  );
  server.registerTool(
    'list_dispatches',
    { description: 'Pending dispatches for this group (tasks to execute or gates to approve).', annotations: read },
    async () => toResult(await client.get('/v1/dispatches', { query: { status: 'pending' } })),
  );
  return server;
}

function toResult(res: BrokerResponse): CallToolResult {
  const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body, null, 2);
  return { content: [{ type: 'text', text }], ...(res.status >= 400 ? { isError: true } : {}) };
}
