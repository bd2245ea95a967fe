/**
 * Group commit, the SQLite call store's batching: the claim, outcome and refusal writes of
 * concurrent calls, each with its audit row, are batched into one `BEGIN IMMEDIATE … COMMIT` per
 * event-loop turn, so one fsync (`synchronous=FULL`) makes a whole batch durable instead of one
 * fsync per write.
 *
 * A write's promise settles only after the COMMIT of its batch returned, so nothing is ever
 * acknowledged before its row is durable. Each write runs in its own savepoint: one failing write
 * (a duplicate claim, say) rolls back alone and rejects alone; the rest of its batch commits.
 * Writes are data (`W`), so a batch is a plain list of what to store; `apply` stores one.
 */
import type { Statement } from 'better-sqlite3';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';

/** Batches committed so far, the writes they held and the seconds their commits took. */
export interface CommitStats {
  batches: number;
  writes: number;
  seconds: number;
}

interface Pending<W> {
  write: W;
  resolve(): void;
  reject(err: unknown): void;
}

/** Batches writes into one transaction per event-loop turn; see the module note. */
export class GroupCommit<W> {
  private queue: Pending<W>[] = [];
  private scheduled = false;
  private readonly savepoint: { begin: Statement; release: Statement; rollback: Statement };
  /** Totals since the start (for the bench). */
  readonly stats: CommitStats = { batches: 0, writes: 0, seconds: 0 };

  /**
   * @param apply stores one write on `db`, inside the batch's transaction and the write's own
   *   savepoint; what it throws rejects that write alone.
   * @param onFlush called after each committed batch with its number of writes and its duration
   *   in seconds (the commit's fsync included), for metrics.
   */
  constructor(
    private readonly db: Db,
    private readonly apply: (write: W) => void,
    private readonly onFlush?: (writes: number, seconds: number) => void,
  ) {
    this.savepoint = {
      begin: db.sqlite.prepare('SAVEPOINT call_write'),
      release: db.sqlite.prepare('RELEASE call_write'),
      rollback: db.sqlite.prepare('ROLLBACK TO call_write'),
    };
  }

  /**
   * Queues a write for the next batch.
   * @returns once the write's batch is committed.
   * @throws (rejects with) what `apply` threw for it (a duplicate claim), its savepoint rolled
   *   back; or ApiError 503 `audit_unavailable` when the batch could not commit. That code means
   *   "nothing ran" only for a claim or a refusal: the caller of an outcome write (the action has
   *   run) answers 502 `outcome_unrecorded` instead.
   */
  run(write: W): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
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
    const failures: unknown[] = [];
    const started = performance.now();
    try {
      immediate(this.db, () => {
        const sp = this.savepoint;
        batch.forEach((p, i) => {
          sp.begin.run();
          try {
            this.apply(p.write);
            sp.release.run();
          } catch (err) {
            sp.rollback.run();
            sp.release.run();
            failures[i] = err;
          }
        });
      });
    } catch (err) {
      const failure = new ApiError('audit_unavailable', 'The call and its audit rows could not be stored, so the broker refused it.', {
        cause: err instanceof Error ? err.message : String(err),
      });
      for (const p of batch) p.reject(failure);
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.stats.batches += 1;
    this.stats.writes += batch.length;
    this.stats.seconds += seconds;
    this.onFlush?.(batch.length, seconds);
    batch.forEach((p, i) => (i in failures ? p.reject(failures[i]) : p.resolve()));
  }
}
