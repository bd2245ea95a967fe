/**
 * The agents' MCP server: exposes the broker to an AI agent as Model Context Protocol tools over
 * stdio. It holds only the group's HMAC secret (the mounted `.ipc_secret`), never a provider
 * credential: every tool is one signed request to the broker, which decides and executes (a task
 * mutation sent without `version` first reads the task for its ETag: one read, then the write).
 * Tools: reads (`whoami`, `list_capabilities`, `get_call`, `list_calls`, `task_context`, `list_dispatches`),
 * provider actions (`call_action`), and the kernel work of a dispatched agent (`ack_dispatch`,
 * `transition_task`, `update_dod`, `decide_gate`).
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ListCallsQuery } from '../modules/calls/routes/list-calls.js';
import { BrokerUnreachableError, type BrokerClient, type BrokerResponse } from '../client/index.js';
import { DodItemUpdates, ReasonText, TaskId } from '../modules/kernel/http.js';
import { etagOf, TASK_STATES } from '../modules/kernel/model.js';

const RequestId = z.string().regex(/^[A-Za-z0-9._:-]{1,255}$/);
/** The version an agent last read; absent → the tool reads the current one first. */
const Version = z.number().int().min(1).optional().describe('The task version you last read (ETag "v<version>"); omit to act on the current version');

/**
 * Builds the MCP server over a signing client. Tools: `whoami`, `list_capabilities`,
 * `call_action`, `get_call`, `list_calls`, `task_context`, `list_dispatches`, and the kernel tools
 * `ack_dispatch`, `transition_task`, `update_dod`, `decide_gate` (see {@link registerKernelTools}).
 * Bad tool input is refused by the tool's schema (an MCP error result; nothing is sent). A broker
 * error comes back as a tool result with `isError: true` and the problem details (code, detail,
 * receipt) as JSON text, so the agent can act on the code; the process never throws on an HTTP
 * error. A broker that cannot be reached is an error result with the code `broker_unreachable`,
 * naming the URL and the cause (see {@link answer}).
 */
export function createMcpServer(client: BrokerClient, version = '0.1.0'): McpServer {
  const server = new McpServer({ name: 'nanoclaw-broker', version });
  const read = { readOnlyHint: true, openWorldHint: false } as const;

  server.registerTool(
    'whoami',
    { description: 'The agent group and key version this server signs as.', annotations: read },
    async () => answer(client.get('/v1/whoami')),
  );
  server.registerTool(
    'list_capabilities',
    { description: 'Every broker action, and whether this group may call it now (and if not, the denial code).', annotations: read },
    async () => answer(client.get('/v1/ext/capabilities')),
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
    async ({ action, params, task_id, request_id }) => {
      const key = request_id ?? randomUUID();
      return answer(client.post('/v1/ext/calls', { action, params, ...(task_id ? { task_id } : {}) }, { idempotencyKey: key }), key);
    },
  );
  server.registerTool(
    'get_call',
    { description: 'The stored outcome of one of this group’s calls, by request id.', inputSchema: { request_id: RequestId }, annotations: read },
    async ({ request_id }) => answer(client.get(`/v1/ext/calls/${encodeURIComponent(request_id)}`)),
  );
  server.registerTool(
    'list_calls',
    {
      description:
        'This group’s own calls, newest first, without receipts or results: find a call whose request_id you lost, or the ones that ended unknown_outcome after a broker restart (check the resource before retrying those under a new request_id). Filters: status, task_id, before (RFC 3339; page with the last created_at seen), limit (1–1000, default 100).',
      inputSchema: ListCallsQuery.omit({ group: true }).shape,
      annotations: read,
    },
    async (query) => answer(client.get('/v1/ext/calls', { query })),
  );
  server.registerTool(
    'task_context',
    { description: 'A task with its activity log, gate decisions and external calls: the working context of a dispatched agent.', inputSchema: { task_id: z.string().min(1) }, annotations: read },
    async ({ task_id }) => answer(client.get(`/v1/tasks/${encodeURIComponent(task_id)}/context`)),
  );
  server.registerTool(
    'list_dispatches',
    { description: 'Pending dispatches for this group (tasks to execute or gates to approve).', annotations: read },
    async () => answer(client.get('/v1/dispatches', { query: { status: 'pending' } })),
  );
  registerKernelTools(server, client);
  return server;
}

/**
 * The kernel tools of a dispatched agent: `ack_dispatch`, `transition_task`, `update_dod`,
 * `decide_gate`. Each mutation carries a fresh Idempotency-Key; the task ones send If-Match (see
 * {@link mutateTask}). Input is checked against the kernel's own limits; every business rule
 * (who may move what, gates, DoD) stays the kernel's, and its refusals come back as error results.
 */
function registerKernelTools(server: McpServer, client: BrokerClient): void {
  const write = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false } as const;
  const task_id = TaskId.describe('The task id (a ULID)');
  server.registerTool(
    'ack_dispatch',
    {
      description: 'Acknowledge one of this group’s dispatches (from list_dispatches): you have taken up the work. Idempotent: acking again answers the same acked dispatch.',
      inputSchema: { dispatch_id: z.string().min(1).describe('The dispatch id') },
      annotations: { ...write, idempotentHint: true },
    },
    async ({ dispatch_id }) => answer(client.post(`/v1/dispatches/${encodeURIComponent(dispatch_id)}/ack`, {}, { idempotencyKey: randomUUID() })),
  );
  server.registerTool(
    'transition_task',
    {
      description:
        'Move a task along the state machine, e.g. DOING → REVIEW when your work is done, or to BLOCKED (reason required) and back. A refused move returns the kernel’s code (illegal_transition with `allowed`, forbidden, precondition_failed when the task changed since `version`).',
      inputSchema: { task_id, to: z.enum(TASK_STATES).describe('The target state'), reason: ReasonText.optional().describe('Why (required for BLOCKED)'), version: Version },
      annotations: write,
    },
    async ({ task_id, to, reason, version }) => answer(mutateTask(client, 'POST', task_id, 'transition', { to, reason }, version)),
  );
  server.registerTool(
    'update_dod',
    {
      description: 'Tick (or untick) definition-of-done items by id, and/or set docs_updated, on a task assigned to or executed by this group.',
      inputSchema: { task_id, items: DodItemUpdates.optional().describe('Items to set: [{id, done}]'), docs_updated: z.boolean().optional().describe('Whether the docs were updated'), version: Version },
      annotations: write,
    },
    async ({ task_id, items, docs_updated, version }) => answer(mutateTask(client, 'PATCH', task_id, 'dod', { items, docs_updated }, version)),
  );
  server.registerTool(
    'decide_gate',
    {
      description:
        'As the gate’s approver, approve a task in APPROVAL or request changes (which sends it back to REVIEW). The group that executed the task may not decide its gate (separation_of_powers).',
      inputSchema: { task_id, decision: z.enum(['approve', 'request_changes']).describe('request_changes sends the task back to REVIEW'), reason: ReasonText.optional().describe('Why; say what to change'), version: Version },
      annotations: write,
    },
    async ({ task_id, decision, reason, version }) => answer(mutateTask(client, 'POST', task_id, 'gate', { decision, reason }, version)),
  );
}

/**
 * One versioned task mutation: `method /v1/tasks/{taskId}/{sub}` with the JSON body (members
 * that are `undefined` are not sent), `If-Match: "v<version>"` and a fresh Idempotency-Key.
 * Without `version` it first GETs the task and sends the `ETag` it answered: one read, then the
 * write, no retry, so a change in between still gets the kernel's 412 `precondition_failed`.
 * @returns the write's response, or the read's when the read failed (e.g. 404 `not_found`).
 *   Never throws on an HTTP error status.
 * @throws BrokerUnreachableError when the broker cannot be reached.
 */
async function mutateTask(client: BrokerClient, method: 'POST' | 'PATCH', taskId: string, sub: 'transition' | 'dod' | 'gate', json: Record<string, unknown>, version: number | undefined): Promise<BrokerResponse> {
  const path = `/v1/tasks/${encodeURIComponent(taskId)}`;
  let ifMatch: string;
  if (version !== undefined) ifMatch = etagOf(version);
  else {
    const current = await client.get(path);
    if (current.status >= 400) return current;
    // Every task answer carries an ETag; an empty If-Match would get the kernel's 428.
    ifMatch = current.headers.get('etag') ?? '';
  }
  return client.request(method, `${path}/${sub}`, { json, headers: { 'if-match': ifMatch }, idempotencyKey: randomUUID() });
}

/**
 * The tool result of one request: {@link toResult} of its answer, or, when the broker could not
 * be reached ({@link BrokerUnreachableError}), an error result whose JSON text is
 * `{code: "broker_unreachable", detail, url, cause}` (`cause`: `ECONNREFUSED`, `ENOTFOUND`, a
 * timeout code, a TLS code, or null) instead of the SDK's bare "fetch failed".
 * @param requestId the call's Idempotency-Key (call_action): named so the agent retries with it,
 *   which replays a call that did run instead of running it twice.
 */
async function answer(sent: Promise<BrokerResponse>, requestId?: string): Promise<CallToolResult> {
  try {
    return toResult(await sent);
  } catch (err) {
    if (!(err instanceof BrokerUnreachableError)) throw err;
    const retry = requestId === undefined ? '' : ` Retry with request_id ${requestId} once it is reachable: a call that did run is replayed, never run twice.`;
    const body = {
      code: 'broker_unreachable',
      detail: `Cannot reach the broker at ${err.url}: ${err.causeCode ?? 'no answer'} (${err.reason}).${retry}`,
      url: err.url,
      cause: err.causeCode,
      ...(requestId === undefined ? {} : { request_id: requestId }),
    };
    return { content: [{ type: 'text', text: JSON.stringify(body, null, 2) }], isError: true };
  }
}

function toResult(res: BrokerResponse): CallToolResult {
  const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body, null, 2);
  return { content: [{ type: 'text', text }], ...(res.status >= 400 ? { isError: true } : {}) };
}
