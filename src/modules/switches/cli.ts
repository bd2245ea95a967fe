import type { Command } from 'commander';
import { CliExit, printJson } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { clearSwitch, setSwitch, SWITCH_SCOPES, switchJson, type SwitchDeps, type SwitchScope } from './service.js';

/** How a command runs against the broker's database (the app's `withDeps`). */
export type SwitchCliRun = <T>(fn: (deps: SwitchDeps) => T | Promise<T>) => Promise<T>;

/** Runs `fn`, turning a refusal into exit 1 with its detail on stderr. */
async function refusalsExit<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw new CliExit(err.detail);
    throw err;
  }
}

/**
 * Registers `broker switches list|set|clear`: operators' kill switches, printed as JSON, set and
 * cleared as `actor` (audited `switch.set` / `switch.cleared` with the reason). A switch set here
 * applies to the next call every broker process on this database decides.
 */
export function registerSwitchCommands(program: Command, run: SwitchCliRun, actor: () => string): void {
  const switches = program.command('switches').description('kill switches: stop all external calls, or one group’s, provider’s or action’s');
  switches
    .command('list')
    .description('list switches oldest first: {data, has_more, next_cursor}')
    .option('--active', 'only the switches not cleared')
    .option('--limit <n>', 'page size, 1–200', '50')
    .option('--starting-after <id>', 'the previous page’s next_cursor')
    .action((opts: { active?: boolean; limit: string; startingAfter?: string }) =>
      run(async (deps) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new CliExit('invalid options: --limit: 1–200');
        const { rows, more } = await deps.stores.switches.list({ limit, ...(opts.active ? { active: true } : {}), ...(opts.startingAfter ? { after: opts.startingAfter } : {}) });
        printJson({ data: rows.map(switchJson), has_more: more, next_cursor: more ? rows.at(-1)!.id : null });
      }),
    );
  switches
    .command('set')
    .description('switch off calls: scope all (no target), group <name>, provider <name> or action <id>; audited switch.set')
    .argument('<scope>', SWITCH_SCOPES.join(' | '))
    .argument('[target]', 'the group, provider or action id (not for all)')
    .requiredOption('--reason <text>', 'why (kept on the switch and its audit row)')
    .action((scope: string, target: string | undefined, opts: { reason: string }) =>
      run(async (deps) => {
        if (!(SWITCH_SCOPES as readonly string[]).includes(scope)) throw new CliExit(`invalid scope: one of ${SWITCH_SCOPES.join(', ')}`);
        if (!opts.reason.trim()) throw new CliExit('invalid options: --reason must not be empty');
        const { switch: sw } = await refusalsExit(() => setSwitch(deps, { scope: scope as SwitchScope, target, reason: opts.reason.trim() }, actor()));
        printJson(sw);
      }),
    );
  switches
    .command('clear')
    .description('clear an active switch; audited switch.cleared')
    .argument('<id>', 'switch id (ksw_…)')
    .requiredOption('--reason <text>', 'why (kept on the switch and its audit row)')
    .action((id: string, opts: { reason: string }) =>
      run(async (deps) => {
        if (!opts.reason.trim()) throw new CliExit('invalid options: --reason must not be empty');
        printJson(await refusalsExit(() => clearSwitch(deps, id, actor(), opts.reason.trim())));
      }),
    );
}
