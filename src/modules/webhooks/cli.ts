import type { Command } from 'commander';
import { CliExit, printJson } from '../../platform/cli.js';
import { ApiError } from '../../platform/http/problem.js';
import { deliveryJson, retryDelivery, type WebhookDeps } from './service.js';
import type { DeliveryStatus } from './store.js';

/** How a command runs against the broker's database (the app's `withDeps`). */
export type WebhookCliRun = <T>(fn: (deps: WebhookDeps) => T | Promise<T>) => Promise<T>;

const STATUSES = ['pending', 'delivered', 'failed'];

/**
 * Registers `broker webhooks deliveries` (a page of deliveries as JSON, `{data, has_more,
 * next_cursor}`) and `broker webhooks retry <id>` (as `actor`, audited `webhook.delivery_retried`).
 */
export function registerWebhookCommands(program: Command, run: WebhookCliRun, actor: () => string): void {
  const webhooks = program.command('webhooks').description('webhook notifications: delivery state and retries (policies/webhooks.json)');
  webhooks
    .command('deliveries')
    .description('list deliveries oldest first: {data, has_more, next_cursor}')
    .option('--status <status>', STATUSES.join(' | '))
    .option('--endpoint <id>', 'an endpoint id of webhooks.json')
    .option('--limit <n>', 'page size, 1–200', '50')
    .option('--starting-after <id>', 'the previous page’s next_cursor')
    .action((opts: { status?: string; endpoint?: string; limit: string; startingAfter?: string }) =>
      run(async (deps) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new CliExit('invalid options: --limit: 1–200');
        if (opts.status !== undefined && !STATUSES.includes(opts.status)) throw new CliExit(`invalid options: --status: one of ${STATUSES.join(', ')}`);
        const { rows, more } = await deps.stores.webhooks.list({
          limit,
          ...(opts.status ? { status: opts.status as DeliveryStatus } : {}),
          ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
          ...(opts.startingAfter ? { after: opts.startingAfter } : {}),
        });
        printJson({ data: rows.map(deliveryJson), has_more: more, next_cursor: more ? rows.at(-1)!.id : null });
      }),
    );
  webhooks
    .command('retry')
    .description('send a delivery that is not delivered again, now, with its attempts reset; audited webhook.delivery_retried')
    .argument('<id>', 'delivery id (whd_…)')
    .option('--reason <text>', 'why (kept on the audit row)')
    .action((id: string, opts: { reason?: string }) =>
      run(async (deps) => {
        try {
          printJson(await retryDelivery(deps, id, actor(), opts.reason?.trim() || null));
        } catch (err) {
          if (err instanceof ApiError) throw new CliExit(err.detail);
          throw err;
        }
      }),
    );
}
