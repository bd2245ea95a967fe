import type { Command } from 'commander';
import { CliExit, printJson, type CliRunner } from '../../platform/cli.js';
import type { Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import { dispatchJson } from './dispatch.js';
import { taskJson } from './model.js';
import { ListTasksQuery, tasksPage } from './routes/list-tasks.js';
import { dispatchesFor, taskContext } from './tasks.js';

function cliError(err: unknown): never {
  if (err instanceof ApiError) throw new CliExit(err.detail);
  throw err;
}

/**
 * Registers `broker tasks list` and `broker tasks show <id>` (issue 3): read-only operator views of
 * the kernel's tasks, printed as JSON on stdout. Invalid options exit 1 with the reason on stderr.
 */
export function registerKernelCommands(program: Command, withDeps: CliRunner<{ db: Db }>): void {
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
      withDeps((deps) => {
        const parsed = ListTasksQuery.safeParse({ state: opts.state, group: opts.group, type: opts.type, limit: opts.limit, starting_after: opts.startingAfter });
        if (!parsed.success) throw new CliExit(`invalid options: ${parsed.error.issues.map((i) => `--${i.path.join('.').replace('_', '-')}: ${i.message}`).join('; ')}`);
        printJson(tasksPage(deps.db, parsed.data));
      }),
    );
  tasks
    .command('show')
    .description('one task with its activity, gate decisions and dispatches')
    .argument('<id>', 'task id')
    .action((id: string) =>
      withDeps((deps) => {
        try {
          const ctx = taskContext(deps.db, id);
          printJson({
            task: taskJson(ctx.task),
            activity: ctx.activity.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail })),
            gate_decisions: ctx.gateDecisions,
            dispatches: dispatchesFor(deps.db, id).map(dispatchJson),
          });
        } catch (err) {
          cliError(err);
        }
      }),
    );
}
