import type { Command } from 'commander';
import { CliExit, printJson } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { RUN_STATUSES } from './routes/schemas.js';
import type { Runner } from './service.js';
import type { RunStore } from './store.js';
import type { RunStatus } from './schema.js';
import { runJson } from './views.js';

/** What the `broker runs` verbs run on. */
export interface RunnerCliDeps {
  runner: Runner;
  stores: { runs: RunStore };
}

/** How a command runs against the broker's database (the app's `withDeps`). */
export type RunnerCliRun = <T>(fn: (deps: RunnerCliDeps) => T | Promise<T>) => Promise<T>;

/**
 * Registers `broker runs list|show|cancel`: the agent processes the runner started, printed as JSON.
 * `cancel` kills a running run's process group (the pid is on the run, so it works from the CLI on
 * the broker's host) and records `run.cancelled` as `actor`. Errors exit 1 with the reason on stderr.
 */
export function registerRunnerCommands(program: Command, run: RunnerCliRun, actor: () => string): void {
  const runs = program.command('runs').description('agent processes started for dispatches (policies/runners.json)');
  runs
    .command('list')
    .description('list runs oldest first: {data, has_more, next_cursor}')
    .option('--status <status>', RUN_STATUSES.join(' | '))
    .option('--group <group>', 'group')
    .option('--task <id>', 'task id')
    .option('--limit <n>', 'page size, 1–200', '50')
    .option('--starting-after <id>', 'the previous page’s next_cursor')
    .action((opts: { status?: string; group?: string; task?: string; limit: string; startingAfter?: string }) =>
      run(async (deps) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new CliExit('invalid options: --limit: 1–200');
        if (opts.status !== undefined && !(RUN_STATUSES as readonly string[]).includes(opts.status)) throw new CliExit(`invalid options: --status: one of ${RUN_STATUSES.join(', ')}`);
        const { rows, hasMore } = await deps.stores.runs.list({
          limit,
          ...(opts.status ? { status: opts.status as RunStatus } : {}),
          ...(opts.group ? { group: opts.group } : {}),
          ...(opts.task ? { taskId: opts.task } : {}),
          ...(opts.startingAfter ? { startingAfter: opts.startingAfter } : {}),
        });
        printJson({ data: rows.map(runJson), has_more: hasMore, next_cursor: hasMore ? rows.at(-1)!.id : null });
      }),
    );
  runs
    .command('show')
    .description('one run')
    .argument('<id>', 'run id')
    .action((id: string) =>
      run(async (deps) => {
        const row = await deps.stores.runs.find(id);
        if (!row) throw new CliExit(`No run ${id}.`);
        printJson(runJson(row));
      }),
    );
  runs
    .command('cancel')
    .description("kill a running run's process group, or cancel a claimed run; audited run.cancelled")
    .argument('<id>', 'run id')
    .option('--reason <text>', 'why (kept on the audit row)')
    .action((id: string, opts: { reason?: string }) =>
      run(async (deps) => {
        try {
          printJson(runJson(await deps.runner.cancel(id, actor(), opts.reason)));
        } catch (err) {
          if (err instanceof ApiError) throw new CliExit(err.detail);
          throw err;
        }
      }),
    );
}
