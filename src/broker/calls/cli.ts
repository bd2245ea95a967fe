import type { Command } from 'commander';
import { z } from 'zod';
import { CliExit, printJson, withDeps } from '../../cli/common.js';
import { CALL_STATUSES, CallStore } from './store.js';
import { callView } from './views.js';

const ListOptions = z.object({
  status: z.enum(CALL_STATUSES).optional(),
  group: z.string().min(1).optional(),
  task: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000),
});

/**
 * Registers `broker calls list [--status S] [--group G] [--task T] [--limit N]` and
 * `broker calls show --group G <request-id>` (issue 4): read-only operator views of external
 * calls, printed as JSON on stdout. After a crash, `broker calls list --status unknown_outcome`
 * lists the calls whose effect must be checked by hand. Bad options exit 1 with the reason.
 */
export function registerCallCommands(program: Command): void {
  const calls = program.command('calls').description('external calls made through the broker (read-only)');
  calls
    .command('list')
    .description('calls newest first, without receipts and answers: {data: [...]}')
    .option('--status <status>', CALL_STATUSES.join(' | '))
    .option('--group <group>', 'calling group')
    .option('--task <id>', 'coupled task id')
    .option('--limit <n>', 'at most this many, 1–1000', '100')
    .action((opts: Record<string, string | undefined>) =>
      withDeps((deps) => {
        const parsed = ListOptions.safeParse(opts);
        if (!parsed.success) throw new CliExit(`invalid options: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`);
        const o = parsed.data;
        const rows = new CallStore(deps.db).list({ status: o.status, group: o.group, taskId: o.task, limit: o.limit });
        printJson({ data: rows.map((r) => callView(r, false)) });
      }),
    );
  calls
    .command('show')
    .description('one call with its receipt and the answer it gave (and replays)')
    .argument('<request-id>', 'the Idempotency-Key of the call')
    .requiredOption('--group <group>', 'calling group')
    .action((requestId: string, opts: { group: string }) =>
      withDeps((deps) => {
        const row = new CallStore(deps.db).find(opts.group, requestId);
        if (!row) throw new CliExit(`no call ${requestId} of group ${opts.group}`);
        printJson(callView(row));
      }),
    );
}
