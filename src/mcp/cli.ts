import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { BrokerClient, loadCredential } from '../client/index.js';
import { createMcpServer } from './server.js';

/**
 * Registers `broker mcp`: the agents' MCP server on stdio, signing as the group whose
 * `.ipc_secret` it is given. It needs no database and no provider credentials.
 */
export function registerMcpCommands(program: Command): void {
  program
    .command('mcp')
    .description("serve the broker's tools to an agent over MCP (stdio), signing with a group secret")
    .option('--secret <file>', 'the group secret file written by `broker secrets export`', process.env.BROKER_SECRET_FILE ?? '/run/secrets/.ipc_secret')
    .option('--url <url>', 'broker origin', process.env.BROKER_URL ?? 'http://127.0.0.1:8787')
    .action(async (opts: { secret: string; url: string }) => {
      const client = new BrokerClient({ baseUrl: opts.url, credential: loadCredential(opts.secret) });
      await createMcpServer(client).connect(new StdioServerTransport());
    });
}
