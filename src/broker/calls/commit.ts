/**
 * Group commit for the call path (issue 4, "Performance"): the claim, result and denial writes of
 * concurrent calls, each with its audit row, are batched into one `BEGIN IMMEDIATE … COMMIT`, so
 * one fsync (`synchronous=FULL`) makes a whole batch durable instead of one fsync per write.
 *
 * A write's promise settles only after the COMMIT of its batch returned, so nothing is ever
 * acknowledged before its row is durable. Each write runs in its own savepoint: one failing write
 * (a duplicate claim, say) rolls back alone and rejects alone; the rest of its batch commits.
 */
import type { Statement } from 'better-sqlite3';
import { immediate, type Db } from '../../db/open.js';
import { ApiError } from '../../http/problem.js';

interface Pending {
  fn: () => unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Batches synchronous write functions into one transaction per event-loop turn. */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  /** Batches committed so far and the writes they held (for the bench and `/metrics`). */
  readonly stats = { batches: 0, writes: 0 };

  /**
   * @param onFlush called after each committed batch with its number of writes and its duration
   *   in seconds (the commit's fsync included), for metrics.
   */
  private readonly savepoint: { begin: Statement; release: Statement; rollback: Statement };

  constructor(
    private readonly db: Db,
    private readonly onFlush?: (writes: number, seconds: number) => void,
  ) {
    this.savepoint = {
      begin: db.sqlite.prepare('SAVEPOINT call_write'),
      release: db.sqlite.prepare('RELEASE call_write'),
      rollback: db.sqlite.prepare('ROLLBACK TO call_write'),
    };
  }

  /**
   * Queues `fn` (synchronous SQL plus its audit row) for the next batch.
   * @returns `fn`'s result once its batch is committed.
   * @throws (rejects with) what `fn` threw, its savepoint rolled back; or ApiError 503
   *   `audit_unavailable` when the batch itself could not commit.
   */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything queued now, then settles each write's promise. */
  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const results: { ok: boolean; value: unknown }[] = [];
    const started = performance.now();
    try {
      immediate(this.db, () => {
        const sp = this.savepoint;
        for (const item of batch) {
          sp.begin.run();
          try {
            results.push({ ok: true, value: item.fn() });
            sp.release.run();
          } catch (err) {
            sp.rollback.run();
            sp.release.run();
            results.push({ ok: false, value: err });
          }
        }
      });
    } catch (err) {
      const failure = new ApiError('audit_unavailable', 'The call and its audit rows could not be stored, so the broker refused it.', {
        cause: err instanceof Error ? err.message : String(err),
      });
      for (const item of batch) item.reject(failure);
      return;
    }
    this.stats.batches += 1;
    this.stats.writes += batch.length;
    this.onFlush?.(batch.length, (performance.now() - started) / 1000);
    batch.forEach((item, i) => {
      const r = results[i]!;
      if (r.ok) item.resolve(r.value);
      else item.reject(r.value);
    });
  }
}
