import { InvalidArgumentError, type Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { BrokerClient, IPC_BASE_URL, ipcFetch, loadCredential } from '../client/index.js';
import { createMcpServer, DEFAULT_POLL_MS } from './server.js';

/** Parses `--poll-ms`: an integer from 100 to 60 000 (ms). */
function pollMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 60_000) throw new InvalidArgumentError('must be an integer from 100 to 60000 (ms)');
  return n;
}

/**
 * Registers `broker mcp`: the agents' MCP server on stdio, signing as the group whose
 * `.ipc_secret` it is given. It needs no database and no provider credentials. It reaches the
 * broker over HTTP (`--url`), or, in a container without a network, through the group's IPC
 * directory (`--ipc /workspace/ipc`: request files answered by a broker serving `BROKER_IPC_DIR`;
 * `--ipc-timeout` ms to wait for each answer). `--poll-ms` (`BROKER_MCP_POLL_MS`, default 3000)
 * is how often it reads the group's capabilities, which bounds how stale its tool list can be.
 */
export function registerMcpCommands(program: Command): void {
  program
    .command('mcp')
    .description("serve the broker's tools to an agent over MCP (stdio), signing with a group secret")
    .option('--secret <file>', 'the group secret file written by `broker secrets export`', process.env.BROKER_SECRET_FILE ?? '/run/secrets/.ipc_secret')
    .option('--url <url>', 'broker origin', process.env.BROKER_URL ?? 'http://127.0.0.1:8787')
    .option<number | string>('--poll-ms <ms>', 'how often to read the capabilities, in ms: the bound on a stale tool list', pollMs, process.env.BROKER_MCP_POLL_MS ?? String(DEFAULT_POLL_MS))
    .option('--ipc <dir>', "use the file transport through this group's IPC directory instead of HTTP (e.g. /workspace/ipc)", process.env.BROKER_IPC)
    .option('--ipc-timeout <ms>', 'with --ipc: how long to wait for each answer, in ms', '60000')
    .action(async (opts: { secret: string; url: string; pollMs: number | string; ipc?: string; ipcTimeout: string }) => {
      // Commander runs the parser on a given option only, not on the default (the environment's).
      const every = typeof opts.pollMs === 'string' ? pollMs(opts.pollMs) : opts.pollMs;
      const credential = loadCredential(opts.secret);
      const timeoutMs = Number(opts.ipcTimeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new Error(`--ipc-timeout must be a positive number of ms, not "${opts.ipcTimeout}"`);
      const client =
        opts.ipc !== undefined && opts.ipc !== ''
          ? new BrokerClient({ baseUrl: IPC_BASE_URL, credential, fetch: ipcFetch({ dir: opts.ipc, timeoutMs }) })
          : new BrokerClient({ baseUrl: opts.url, credential });
      await createMcpServer(client, { pollMs: every }).connect(new StdioServerTransport());
    });
}
