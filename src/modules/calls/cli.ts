import type { Command } from 'commander';
import { z } from 'zod';
import { CliExit, cliOperator, printJson, type CliRunner } from '../../platform/cli.js';
import type { Clock } from '../../platform/clock.js';
import { MIN_CALL_RETENTION_MS, parseDurationMs, type Config } from '../../platform/config.js';
import { countPurgeable, purgeCalls } from './retention.js';
import { CALL_STATUSES, type CallStore } from './store.js';
import { callView } from './views.js';

const ListOptions = z.object({
  status: z.enum(CALL_STATUSES).optional(),
  group: z.string().min(1).optional(),
  task: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000),
});

const PurgeOptions = z.object({
  olderThan: z.string().optional(),
  dryRun: z.boolean().default(false),
});

/** What the `broker calls` verbs run on. */
export interface CallCliDeps {
  /** The calls' store (`Stores.calls`). */
  stores: { calls: CallStore };
  clock: Clock;
  config: Config;
}

/** What `broker calls purge` prints: the cutoff (RFC 3339) and the rows deleted, or that would be with `--dry-run`. */
export type PurgeReport = { before: string; deleted: number } | { before: string; dry_run: true; would_delete: number };

/**
 * `broker calls purge [--older-than D] [--dry-run]` on open deps: deletes the calls (idempotency
 * keys) created more than `olderThan` ago (default `BROKER_CALL_RETENTION`) that are not running,
 * audited as `calls.purged` by `actor` (see `retention.ts`); with `dryRun`, only counts them.
 * @param opts commander's options: `olderThan` a duration such as `30d` (a bare number is seconds).
 * @throws CliExit when `olderThan` is not a duration or is under 7 days (the idempotency guarantee).
 */
export async function purgeCommand(deps: CallCliDeps, opts: Record<string, unknown>, actor: string): Promise<PurgeReport> {
  const parsed = PurgeOptions.safeParse(opts);
  if (!parsed.success) throw new CliExit(`invalid options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { olderThan, dryRun } = parsed.data;
  let ageMs = deps.config.callRetentionMs;
  if (olderThan !== undefined) {
    const millis = parseDurationMs(olderThan);
    if (millis === null) throw new CliExit(`--older-than: "${olderThan}" is not a duration such as 30d, 720h or 2592000 (seconds)`);
    if (millis < MIN_CALL_RETENTION_MS) {
      throw new CliExit(`--older-than: at least 7d; call rows are the idempotency keys, which the broker guarantees to keep at least 7 days (got ${olderThan})`);
    }
    ageMs = millis;
  }
  const before = deps.clock.now() - ageMs;
  const iso = new Date(before).toISOString();
  if (dryRun) return { before: iso, dry_run: true, would_delete: await countPurgeable(deps, before) };
  return { before: iso, deleted: await purgeCalls(deps, { before, actor }) };
}

/**
 * Registers `broker calls list [--status S] [--group G] [--task T] [--limit N]` and
 * `broker calls show --group G <request-id>`: read-only operator views of external calls,
 * printed as JSON on stdout. After a crash, `broker calls list --status unknown_outcome`
 * lists the calls whose effect must be checked by hand. Also `broker calls purge [--older-than D]
 * [--dry-run]` ({@link purgeCommand}): deletes old call rows by hand, printing `{before, deleted}`
 * (or `{before, dry_run, would_delete}`). Bad options exit 1 with the reason.
 */
export function registerCallCommands(program: Command, withDeps: CliRunner<CallCliDeps>): void {
  const calls = program.command('calls').description('external calls made through the broker');
  calls
    .command('list')
    .description('calls newest first, without receipts and answers: {data: [...]}')
    .option('--status <status>', CALL_STATUSES.join(' | '))
    .option('--group <group>', 'calling group')
    .option('--task <id>', 'coupled task id')
    .option('--limit <n>', 'at most this many, 1–1000', '100')
    .action((opts: Record<string, string | undefined>) =>
      withDeps(async (deps) => {
        const parsed = ListOptions.safeParse(opts);
        if (!parsed.success) throw new CliExit(`invalid options: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`);
        const o = parsed.data;
        const rows = await deps.stores.calls.list({ status: o.status, group: o.group, taskId: o.task, limit: o.limit });
        printJson({ data: rows.map((r) => callView(r, false)) });
      }),
    );
  calls
    .command('show')
    .description('one call with its receipt and the answer it gave (and replays)')
    .argument('<request-id>', 'the Idempotency-Key of the call')
    .requiredOption('--group <group>', 'calling group')
    .action((requestId: string, opts: { group: string }) =>
      withDeps(async (deps) => {
        const row = await deps.stores.calls.find(opts.group, requestId);
        if (!row) throw new CliExit(`no call ${requestId} of group ${opts.group}`);
        printJson(callView(row));
      }),
    );
  calls
    .command('purge')
    .description('delete calls (idempotency keys) older than --older-than that are not running, audited: {before, deleted}')
    .option('--older-than <duration>', 'age, e.g. 30d (at least 7d; default BROKER_CALL_RETENTION)')
    .option('--dry-run', 'only count the calls that would be deleted: {before, dry_run, would_delete}')
    .action((opts: Record<string, unknown>) => withDeps(async (deps) => printJson(await purgeCommand(deps, opts, cliOperator()))));
}
