/**
 * Agents for the MCP tests: a real `broker mcp` process on stdio per group, signing with the
 * group's exported `.ipc_secret`, driven by the MCP SDK's own client, which also counts the
 * `notifications/tools/list_changed` it receives.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ToolListChangedNotificationSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';
import { z } from 'zod';
import { exportSecretFile } from '../../src/modules/identity/keys.js';
import { defineAction, type Provider } from '../../src/providers/contract.js';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';

/** A provider only these tests register: `echo.say` (L1, idempotent) answers its text. */
export const echoProvider: Provider = {
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

export type ToolResult = Awaited<ReturnType<Client['callTool']>>;

/** One agent: its MCP client and the list-change notices it received. */
export interface Agent {
  group: string;
  client: Client;
  /** How many `notifications/tools/list_changed` arrived so far. */
  changes(): number;
  /** Resolves once more than `seen` notices have arrived (the test's timeout bounds the wait). */
  changedSince(seen: number): Promise<void>;
  /** The tools it lists now. */
  tools(): Promise<Tool[]>;
  call(name: string, args: Record<string, unknown>): Promise<ToolResult>;
  close(): Promise<void>;
}

/** Starts `broker mcp` for `group` against `broker` (`--poll-ms` when given) and connects to it. */
export async function startAgent(broker: TestBroker, group: string, pollMs?: number): Promise<Agent> {
  const secretFile = exportSecretFile(tempDir(), broker.deps.keys.current(group));
  const client = new Client({ name: `test-agent-${group}`, version: '1.0.0' });
  let count = 0;
  let waiters: { seen: number; resolve: () => void }[] = [];
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    count += 1;
    const due = waiters.filter((w) => count > w.seen);
    waiters = waiters.filter((w) => count <= w.seen);
    for (const w of due) w.resolve();
  });
  const args = [BIN, 'mcp', '--secret', secretFile, '--url', broker.url, ...(pollMs === undefined ? [] : ['--poll-ms', String(pollMs)])];
  await client.connect(new StdioClientTransport({ command: process.execPath, args, cwd: REPO_ROOT, stderr: 'pipe' }));
  return {
    group,
    client,
    changes: () => count,
    changedSince: (seen) => (count > seen ? Promise.resolve() : new Promise((resolve) => waiters.push({ seen, resolve }))),
    tools: async () => (await client.listTools()).tools,
    call: (name, a) => client.callTool({ name, arguments: a }),
    close: () => client.close(),
  };
}

/**
 * Waits for list-change notices after `seen` until the agent's list satisfies `ok`, and returns
 * that list. Each round waits for a new notice first, so the change must have been announced.
 */
export async function untilAnnounced(agent: Agent, seen: number, ok: (names: string[]) => boolean): Promise<string[]> {
  let mark = seen;
  for (;;) {
    await agent.changedSince(mark);
    mark = agent.changes();
    const names = (await agent.tools()).map((t) => t.name);
    if (ok(names)) return names;
  }
}

export const textOf = (r: ToolResult) => (r.content as { text: string }[])[0]!.text;
export const bodyOf = (r: ToolResult) => JSON.parse(textOf(r)) as Record<string, any>;

/** The body of a successful tool result; fails with the text otherwise. */
export function ok(r: ToolResult): Record<string, any> {
  expect(r.isError, textOf(r)).toBeFalsy();
  return bodyOf(r);
}

/** The paths of the `POST /v1/ext/calls` requests the broker logged so far (capability polls left out). */
export function callRequests(broker: TestBroker): string[] {
  return broker.logs
    .map((l) => JSON.parse(l) as { msg?: string; method?: string; path?: string })
    .filter((l) => l.msg === 'request' && l.method === 'POST' && l.path === '/v1/ext/calls')
    .map((l) => `${l.method} ${l.path}`);
}
