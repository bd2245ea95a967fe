/**
 * The agents' access-request tools, self-contained so the MCP server can register them beside its
 * others: `request_access` (ask an operator for a capability, or to renew a grant) and
 * `get_access_request` (its outcome). Both are one signed request to the broker through the
 * group's {@link BrokerClient}; every rule (ceiling, expiry bounds, who decides) stays the
 * broker's, and its refusals come back as error results carrying the problem's code.
 */
import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { BrokerUnreachableError, type BrokerClient, type BrokerResponse } from '../client/index.js';

const Patterns = z.array(z.string().min(1).max(256)).min(1).max(100);

/**
 * Registers `request_access` and `get_access_request` on `server`, sending through `client`.
 * `request_access` takes new terms (`provider`, `level`, `allowed_actions`, `resources`) or
 * `renews` (a grant id), plus `ttl_s` and `justification`; `request_id` is its Idempotency-Key
 * (a retry with the same one and the same input answers the same request). Results are the
 * broker's JSON answer as text; an HTTP error is `isError: true` with the problem details; an
 * unreachable broker is `isError: true` with `{code: "broker_unreachable", detail, url, cause}`.
 */
export function registerRequestAccessTool(server: McpServer, client: BrokerClient): void {
  server.registerTool(
    'request_access',
    {
      description:
        'Ask an operator for a capability this group lacks (or to extend one of its active grants with `renews`). It is stored as a pending request: it grants nothing until an operator approves it, never above the group’s ceiling, and expires if nobody decides (24 h by default). Name the provider, the actions, the resources, the level, how long you need it (ttl_s, at most 7 days) and why (justification: operators read it; never put a secret in it). Then follow it with get_access_request, or list_capabilities once approved; L3 grants also wait for two approvers.',
      inputSchema: {
        provider: z.string().optional().describe('The provider, e.g. `github` (not with renews)'),
        level: z.union([z.literal(1), z.literal(2), z.literal(3), z.enum(['L1', 'L2', 'L3'])]).optional().describe('1 read, 2 write, 3 production (not with renews)'),
        allowed_actions: Patterns.optional().describe('Action ids such as `github.get_repo`, or patterns ending in `*` (not with renews)'),
        resources: Patterns.optional().describe('Resource patterns such as `acme/api` or `acme/*` (not with renews)'),
        ttl_s: z.number().int().positive().max(604800).describe('How long the grant should last once active, in seconds'),
        justification: z.string().min(1).max(900).describe('Why this group needs it (the task, the goal)'),
        renews: z.string().optional().describe('An active grant id of this group to extend with the same terms'),
        request_id: z.string().regex(/^[A-Za-z0-9._:-]{1,255}$/).optional().describe('Idempotency key; reuse it to retry the same request safely'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async ({ request_id, ...request }) => result(client.requestAccess(request, request_id ?? randomUUID())),
  );
  server.registerTool(
    'get_access_request',
    {
      description: 'One of this group’s access requests: its status (pending, approved, denied, expired), the decision’s reason, and the grant it created with that grant’s status now.',
      inputSchema: { id: z.string().min(1).max(64).describe('The request id, `grq_…`') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ id }) => result(client.accessRequest(id)),
  );
}

/** The tool result of one request (see {@link registerRequestAccessTool}). */
async function result(sent: Promise<BrokerResponse>): Promise<CallToolResult> {
  let res: BrokerResponse;
  try {
    res = await sent;
  } catch (err) {
    if (!(err instanceof BrokerUnreachableError)) throw err;
    const body = { code: 'broker_unreachable', detail: `Cannot reach the broker at ${err.url}: ${err.causeCode ?? 'no answer'} (${err.reason}).`, url: err.url, cause: err.causeCode };
    return { content: [{ type: 'text', text: JSON.stringify(body, null, 2) }], isError: true };
  }
  const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body, null, 2);
  return { content: [{ type: 'text', text }], ...(res.status >= 400 ? { isError: true } : {}) };
}
