import type { Command } from 'commander';
import { CliExit, printJson } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { taskJson } from './model.js';
import { ListTasksQuery, tasksPage } from './routes/list-tasks.js';
import type { KernelDeps } from './service/common.js';
import { dispatchJson } from './service/dispatch.js';
import { dispatchesFor, taskContext } from './service/read.js';

/**
 * How a command runs against the broker: the app's `withDeps` (opens the database and policies
 * from the `BROKER_*` environment, runs `fn`, closes them).
 */
export type KernelCliRun = <T>(fn: (deps: KernelDeps) => T | Promise<T>) => Promise<T>;

function cliError(err: unknown): never {
  if (err instanceof ApiError) throw new CliExit(err.detail);
  throw err;
}

/**
 * Registers `broker tasks list` and `broker tasks show <id>`: read-only operator views of the
 * kernel's tasks, printed as JSON on stdout. Invalid options exit 1 with the reason on stderr.
 */
export function registerKernelCommands(program: Command, run: KernelCliRun): void {
  const tasks = program.command('tasks').description("the orchestration kernel's tasks (read-only)");
  tasks
    .command('list')
    .description('list tasks oldest first: {data, has_more, next_cursor}')
    .option('--state <state>', 'INBOX | TRIAGED | READY | DOING | REVIEW | APPROVAL | DONE | BLOCKED')
    .option('--group <group>', 'assigned group')
    .option('--type <type>', 'FEATURE | BUG | SECURITY | OPS | DOCS | REVOPS | CLAIMS | PRODUCT')
    .option('--limit <n>', 'page size, 1–200', '50')
    .option('--starting-after <id>', 'the previous page’s next_cursor')
    .action((opts: { state?: string; group?: string; type?: string; limit: string; startingAfter?: string }) =>
      run(async (deps) => {
        const parsed = ListTasksQuery.safeParse({ state: opts.state, group: opts.group, type: opts.type, limit: opts.limit, starting_after: opts.startingAfter });
        if (!parsed.success) throw new CliExit(`invalid options: ${parsed.error.issues.map((i) => `--${i.path.join('.').replace('_', '-')}: ${i.message}`).join('; ')}`);
        printJson(await tasksPage(deps, parsed.data));
      }),
    );
  tasks
    .command('show')
    .description('one task with its activity, gate decisions and dispatches')
    .argument('<id>', 'task id')
    .action((id: string) =>
      run(async (deps) => {
        try {
          const ctx = await taskContext(deps, id);
          printJson({
            task: taskJson(ctx.task),
            activity: ctx.activity.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail })),
            gate_decisions: ctx.gateDecisions,
            dispatches: (await dispatchesFor(deps, id)).map(dispatchJson),
          });
        } catch (err) {
          cliError(err);
        }
      }),
    );
}
