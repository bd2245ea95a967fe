/**
 * The agents' MCP server: exposes the broker to an AI agent as Model Context Protocol tools over
 * stdio. It holds only the group's HMAC secret (the mounted `.ipc_secret`), never a provider
 * credential: every tool is one signed request to the broker, which decides and executes (a task
 * mutation sent without `version` first reads the task for its ETag: one read, then the write).
 *
 * The core here wires the MCP SDK's low-level `Server` (tool lists change while it runs, and the
 * typed tools' input schemas are JSON Schemas from the broker) to the {@link ToolRegistry}:
 * - `tools/list` reads the capabilities, then answers the group's tools: the static families of
 *   `tools/index.ts` its roles list (`roles.ts`), then one typed tool per action it may call now
 *   (`tools/actions.ts`);
 * - `tools/call` finds the tool by name or earlier name (listed or not: the broker decides),
 *   checks the arguments (an error result, nothing sent, when invalid) and runs it;
 * - a poll of the capabilities sends `notifications/tools/list_changed` when they change
 *   (`capabilities.ts`: bounded by the poll interval, default 3 s).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { BrokerClient } from '../client/index.js';
import { CapabilityWatch } from './capabilities.js';
import { answerWith, listed, ToolRegistry, type ToolContext } from './registry.js';
import { errorResult } from './result.js';
import { rolesOf } from './roles.js';
import { ActionTools } from './tools/actions.js';
import { TOOL_FAMILIES } from './tools/index.js';

/** How long `tools/list` waits for fresh capabilities before answering with the last ones, in ms. */
const LIST_WAIT_MS = 2000;

/** Default time between two reads of the capabilities, in ms. */
export const DEFAULT_POLL_MS = 3000;

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  /** The server's version in `initialize` (default 0.1.0). */
  version?: string;
  /** Time between two reads of the capabilities, in ms (default {@link DEFAULT_POLL_MS}). */
  pollMs?: number;
  /** Where operator lines go (default stderr): the capabilities cannot be read, or can again. */
  warn?(line: string): void;
}

/**
 * Builds the MCP server over a signing client, for the group the client signs as. Bad tool input
 * is an error result naming what is wrong, and nothing is sent. A broker refusal is an error
 * result whose JSON text gives the code, what to do, the failed decision step and the problem
 * (`result.ts`); an unreachable broker names the URL and the cause. The process never throws on
 * an HTTP error. Call `connect(transport)` on the result.
 */
export function createMcpServer(client: BrokerClient, opts: McpServerOptions = {}): Server {
  const server = new Server(
    { name: 'nanoclaw-broker', version: opts.version ?? '0.1.0' },
    {
      capabilities: { tools: { listChanged: true } },
      instructions:
        'Tools of the NanoClaw broker for this agent group. One typed tool per external action the group may call now (the list changes as grants do: re-list on notifications/tools/list_changed), ext_call for any action by id, and the governance tools (gov_*) of the group’s role. The broker decides every call; a refusal says what to do.',
    },
  );
  const registry = new ToolRegistry();
  const ctx: ToolContext = { client, roles: rolesOf(client.group), answer: answerWith(registry) };
  for (const family of TOOL_FAMILIES) registry.add(...family(ctx));
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const watch = new CapabilityWatch(client, {
    intervalMs: opts.pollMs ?? DEFAULT_POLL_MS,
    onChange: () => void server.sendToolListChanged().catch(() => {}),
    onProblem: warn,
  });
  registry.addSource(new ActionTools(watch, ctx));

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    // A broker that does not answer soon does not hold the list up: the last capabilities serve,
    // and the poll announces the change once the answer arrives.
    await Promise.race([watch.refresh(), delay(LIST_WAIT_MS, undefined, { ref: false })]);
    watch.markServed();
    return { tools: registry.listFor(ctx.roles).map(listed) };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name, arguments: args } = request.params;
    let tool = registry.find(name);
    if (tool === undefined) {
      await watch.refresh();
      tool = registry.find(name);
    }
    if (tool === undefined) throw new McpError(ErrorCode.InvalidParams, `Tool ${name} not found`);
    const parsed = tool.parse(args ?? {});
    if (!parsed.ok) return errorResult(`Input validation error: Invalid arguments for tool ${name}: ${parsed.message}`);
    try {
      return await tool.run(parsed.value);
    } catch (err) {
      return errorResult(`Tool ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  server.oninitialized = () => watch.start();
  server.onclose = () => watch.stop();
  return server;
}
