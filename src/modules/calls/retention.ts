/**
 * Retention of `ext_calls` rows (the idempotency keys), as Stripe prunes idempotency keys and
 * Vault tidies leases: `broker serve` purges finished calls older than `BROKER_CALL_RETENTION`
 * (default 30 days, at least the 7 days the README promises) once at start-up and then hourly;
 * `broker calls purge` does it by hand.
 *
 * What goes: rows whose `created_at` is before the cutoff and whose status is not `running` (a
 * running call is never purged, whatever its age; `unknown_outcome` rows go like finished ones).
 * A purged key is simply new again: step 3 finds no row for it, so a call under it is claimed and
 * executed as a new call.
 *
 * The row with the highest rowid is never purged; it goes at the next purge after a newer call.
 * `ext_calls` has no AUTOINCREMENT, so SQLite gives a new row `max(rowid) + 1`: keeping the newest
 * row keeps rowids increasing in claim order.
 *
 * Nothing references `ext_calls` by foreign key, so deleting a row touches no other table.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/log.js';
import type { CallStore } from './store.js';

/** Rows deleted per transaction by default: each batch holds the write lock for a few ms at most. */
export const PURGE_BATCH_SIZE = 1000;
/** How often `serve` purges, in ms (and once at start-up). */
export const CALL_PURGE_INTERVAL_MS = 3600 * 1000;
/** The audit kind of one purge batch (subject {@link PURGE_SUBJECT}, detail `{before, deleted}`). */
export const PURGE_AUDIT_KIND = 'calls.purged';
/** The audit subject of purge batches: the table. */
export const PURGE_SUBJECT = 'ext_calls';

/** What {@link purgeCalls} and {@link countPurgeable} run on. */
export interface PurgeDeps {
  /** The calls' store the rows are deleted from. */
  stores: { calls: CallStore };
  /** Stamps the audit rows (never `Date.now`). */
  clock: Clock;
}

/** Options of {@link purgeCalls}. */
export interface PurgeOptions {
  /** The cutoff, Unix ms: rows with `created_at` strictly before it go. */
  before: number;
  /** Rows per transaction, at least 1; default {@link PURGE_BATCH_SIZE}. */
  batchSize?: number;
  /** The audit actor: `system` (default) for `serve`, `cliOperator()` for the CLI. */
  actor?: string;
  /** Stops between batches when aborted (a stopping server); what was deleted stays deleted. */
  signal?: AbortSignal;
}

/**
 * Number of rows a purge with this cutoff would delete now (`broker calls purge --dry-run`).
 * @param before the cutoff, Unix ms.
 */
export function countPurgeable(deps: { stores: { calls: CallStore } }, before: number): Promise<number> {
  return deps.stores.calls.countPurgeable(before);
}

/**
 * Deletes the calls created before `opts.before` that are not `running` (see the module note), in
 * batches of at most `batchSize` rows. Each batch is one `BEGIN IMMEDIATE` transaction that
 * deletes its rows and appends one `calls.purged` audit row (`{before: RFC 3339, deleted: n}`):
 * both commit or neither does (fail-closed). When nothing is eligible no transaction is opened, and
 * a batch that deletes nothing (another purge got there first) writes no audit row. Between
 * batches it yields to the event loop, so requests keep flowing during a large backlog.
 * @returns the number of rows deleted.
 * @throws RangeError when `batchSize` is not a positive integer; ApiError 503 `audit_unavailable`
 *   or the SQLite error of a failed batch (that batch is rolled back; earlier ones stay).
 */
export async function purgeCalls(deps: PurgeDeps, opts: PurgeOptions): Promise<number> {
  const batchSize = opts.batchSize ?? PURGE_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, not ${batchSize}`);
  const store = deps.stores.calls;
  const before = new Date(opts.before).toISOString();
  const audit = (deleted: number) => ({
    input: { actor: opts.actor ?? 'system', kind: PURGE_AUDIT_KIND, subject: PURGE_SUBJECT, detail: { before, deleted } },
    nowMs: deps.clock.now(),
  });
  let total = 0;
  for (;;) {
    if (opts.signal?.aborted) break;
    const deleted = await store.purgeBatch(opts.before, batchSize, audit);
    total += deleted;
    if (deleted < batchSize) break;
    await yieldToEventLoop();
  }
  return total;
}

/** What the retention loop runs on (a subset of `Deps`). */
export interface RetentionDeps extends PurgeDeps {
  config: Pick<Config, 'callRetentionMs'>;
  logger: Logger;
}

/**
 * Starts `serve`'s retention loop: a purge now, then one every {@link CALL_PURGE_INTERVAL_MS}
 * (an unref'd timer, so it never keeps the process alive; a purge still running is not
 * overlapped), each with `before = clock.now() - config.callRetentionMs`. Logs `{deleted}` at info
 * when a purge deleted rows; a failed purge is logged at error and retried at the next tick, and
 * never stops the server.
 * @returns stop(): no new purges; one in progress ends after its current batch.
 */
export function startCallRetention(deps: RetentionDeps): () => void {
  const controller = new AbortController();
  let running = false;
  const tick = () => {
    if (running || controller.signal.aborted) return;
    running = true;
    const before = deps.clock.now() - deps.config.callRetentionMs;
    purgeCalls(deps, { before, signal: controller.signal })
      .then((deleted) => {
        if (deleted > 0) deps.logger.info({ deleted, before: new Date(before).toISOString() }, 'old call rows purged');
      })
      .catch((err: unknown) => deps.logger.error({ err }, 'call purge failed; retrying at the next tick'))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, CALL_PURGE_INTERVAL_MS);
  timer.unref();
  return () => {
    controller.abort();
    clearInterval(timer);
  };
}
