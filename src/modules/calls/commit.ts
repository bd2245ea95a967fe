/**
 * Group commit for the call path (issue 4, "Performance"): the claim, outcome and denial writes of
 * concurrent calls, each with its audit row, are batched into one `BEGIN IMMEDIATE … COMMIT` per
 * event-loop turn, so one fsync (`synchronous=FULL`) makes a whole batch durable instead of one
 * fsync per write.
 *
 * A write's promise settles only after the COMMIT of its batch returned, so nothing is ever
 * acknowledged before its row is durable. Each write runs in its own savepoint: one failing write
 * (a duplicate claim, say) rolls back alone and rejects alone; the rest of its batch commits.
 * Writes are data ({@link CallWrite}), so the batch is a plain list of what to store.
 */
import type { ActivityInput } from '../../platform/audit/trail.js';
import { appendActivity } from '../../platform/audit/trail.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Statement } from 'better-sqlite3';
import type { CallEnd, CallStore, NewCall } from './store.js';

/** An audit row to append in the write's transaction, at `nowMs` (Unix ms). */
export interface AuditWrite {
  input: ActivityInput;
  nowMs: number;
}

/**
 * One durable write of the call path, as data:
 * - `claim`: insert the `running` call row (step 13) and its audit row;
 * - `end`: store a running call's outcome (step 14) and its audit row;
 * - `audit`: an audit row alone (a refusal at steps 2–12).
 */
export type CallWrite =
  | { op: 'claim'; call: NewCall; audit: AuditWrite }
  | { op: 'end'; group: string; requestId: string; end: CallEnd; audit: AuditWrite }
  | { op: 'audit'; audit: AuditWrite };

/**
 * Applies one write on `db` (inside the caller's transaction, in its own savepoint).
 * @throws the SQLite error (a duplicate claim raises `SQLITE_CONSTRAINT_PRIMARYKEY`), or ApiError
 *   `audit_unavailable` when the audit row cannot be appended.
 */
export function applyWrite(db: Db, store: CallStore, w: CallWrite): void {
  if (w.op === 'claim') store.insertRunning(w.call);
  else if (w.op === 'end') store.end(w.group, w.requestId, w.end);
  appendActivity(db, w.audit.input, w.audit.nowMs);
}

interface Pending {
  write: CallWrite;
  resolve(): void;
  reject(err: unknown): void;
}

/** Batches call writes into one transaction per event-loop turn; see the module note. */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly savepoint: { begin: Statement; release: Statement; rollback: Statement };
  /** Batches committed so far, the writes they held and the seconds their commits took (for the bench). */
  readonly stats = { batches: 0, writes: 0, seconds: 0 };

  /**
   * @param store the call statements of `db`'s connection.
   * @param onFlush called after each committed batch with its number of writes and its duration
   *   in seconds (the commit's fsync included), for metrics.
   */
  constructor(
    private readonly db: Db,
    private readonly store: CallStore,
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
   * @throws (rejects with) what the write threw (a duplicate claim's SQLite constraint error), its
   *   savepoint rolled back; or ApiError 503 `audit_unavailable` when the batch could not commit.
   *   That code means "nothing ran" only for a claim or a refusal: the caller of an `end` write
   *   (the action has run) answers 502 `outcome_unrecorded` instead (`CallService.finish`).
   */
  run(write: CallWrite): Promise<void> {
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
            applyWrite(this.db, this.store, p.write);
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
