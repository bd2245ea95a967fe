/**
 * CLI verbs of access requests, under `broker grants`: `grants requests [list]` (the pending ones
 * by default), `grants requests show <id>`, `grants requests approve <id> [--reason]` and
 * `grants requests deny <id> --reason`. They work on the data directory's database directly (the
 * running server sees every change on its next lookup), act as `operator:<OS user>`, and print
 * JSON on stdout.
 */
import type { Command } from 'commander';
import { CliExit, cliOperator, printJson, type CliRunner } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { approveGrantRequest, denyGrantRequest, getGrantRequest, listGrantRequests, type GrantRequestDeps } from './service.js';
import type { GrantRequestStatus } from './store.js';

const STATUSES: readonly string[] = ['pending', 'approved', 'denied', 'expired', 'all'];

/** Runs a CLI action, turning an ApiError into a one-line message and exit code 1. */
async function cli<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw new CliExit(`${err.code}: ${err.detail}`);
    throw err;
  }
}

/**
 * Registers `requests` under the program's `grants` command (created when absent, so the order of
 * registration does not matter); `run` opens the broker's database for each verb.
 */
export function registerGrantRequestCommands(program: Command, run: CliRunner<GrantRequestDeps>): void {
  const grants = program.commands.find((c) => c.name() === 'grants') ?? program.command('grants').description('capability grants');
  const requests = grants.command('requests').description("agents' access requests: list (default), show, approve, deny");

  requests
    .command('list', { isDefault: true })
    .description('requests oldest first, pending ones unless --status says otherwise: {data, has_more, next_cursor}')
    .option('--group <group>')
    .option('--status <status>', 'pending | approved | denied | expired | all', 'pending')
    .option('--limit <n>', 'page size, 1–500', '100')
    .option('--cursor <id>', "the previous page's next_cursor")
    .action((o: { group?: string; status: string; limit: string; cursor?: string }) =>
      run((deps) =>
        cli(async () => {
          if (!STATUSES.includes(o.status)) throw new CliExit(`--status: one of ${STATUSES.join(', ')}`);
          const limit = Number(o.limit);
          if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliExit('--limit: a whole number from 1 to 500');
          const status = o.status === 'all' ? undefined : (o.status as GrantRequestStatus);
          const { items, nextCursor } = await listGrantRequests(deps, { group: o.group, status, limit, after: o.cursor });
          printJson({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
        }),
      ),
    );

  requests
    .command('show <id>')
    .description('one request, its grant’s status and its timeline')
    .action((id: string) => run((deps) => cli(async () => printJson(await getGrantRequest(deps, id)))));

  requests
    .command('approve <id>')
    .description('approve: create the grant (L1/L2 active now; L3 waits for two approvals) and print {request, grant}')
    .option('--reason <text>')
    .action((id: string, o: { reason?: string }) =>
      run((deps) =>
        cli(async () => {
          const { request, grant } = await approveGrantRequest(deps, id, cliOperator(), o.reason ?? null);
          printJson({ request, grant });
        }),
      ),
    );

  requests
    .command('deny <id>')
    .description('deny, with the reason the agent will read')
    .requiredOption('--reason <text>')
    .action((id: string, o: { reason: string }) =>
      run((deps) =>
        cli(async () => {
          if (o.reason.trim() === '') throw new CliExit('--reason: say why');
          printJson(await denyGrantRequest(deps, id, cliOperator(), o.reason.trim()));
        }),
      ),
    );
}
