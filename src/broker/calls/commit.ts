/**
 * Group commit for the call path (issue 4, "Performance"): the claim, outcome and denial writes of
 * concurrent calls, each with its audit row, are batched into one `BEGIN IMMEDIATE … COMMIT` on a
 * writer thread with its own SQLite connection, so one fsync (`synchronous=FULL`) makes a whole
 * batch durable and the event loop serving requests never waits on the disk.
 *
 * A write's promise settles only after the COMMIT of its batch returned on the writer thread, so
 * nothing is ever acknowledged before its row is durable. Each write runs in its own savepoint:
 * one failing write (a duplicate claim, say) rolls back alone and rejects alone; the rest of its
 * batch commits. One batch is in flight at a time; writes queued meanwhile form the next batch, so
 * batches grow with the load.
 */
import { Worker } from 'node:worker_threads';
import type { ActivityInput } from '../../audit/trail.js';
import { appendActivity } from '../../audit/trail.js';
import { redact } from '../../audit/redact.js';
import type { Db } from '../../db/open.js';
import { ApiError } from '../../http/problem.js';
import type { CallEnd, CallStore, NewCall } from './store.js';

/** An audit row to append in the write's transaction, at `nowMs` (Unix ms). */
export interface AuditWrite {
  input: ActivityInput;
  nowMs: number;
}

/**
 * One durable write of the call path, as data (it crosses to the writer thread):
 * - `claim`: insert the `running` call row (step 13) and its audit row;
 * - `end`: store a running call's outcome (step 14) and its audit row;
 * - `audit`: an audit row alone (a refusal at steps 2–12).
 */
export type CallWrite =
  | { op: 'claim'; call: NewCall; audit: AuditWrite }
  | { op: 'end'; group: string; requestId: string; end: CallEnd; audit: AuditWrite }
  | { op: 'audit'; audit: AuditWrite };

/** How one write of a batch ended: null when stored, else the error's message and SQLite code. */
export type WriteResult = null | { message: string; code?: string };

/** The writer thread's answer to one batch: a result per write, or why the whole batch failed. */
export type BatchReply = { id: number; results: WriteResult[]; seconds: number } | { id: number; failure: string };

/** What the writer thread needs to open its connection like the main one. */
export interface WriterOptions {
  path: string;
  readonly: boolean;
  synchronous: 'NORMAL' | 'FULL' | 'EXTRA';
  busyTimeoutMs: number;
}

/**
 * Applies one write on `db` (inside the caller's transaction). Used by the writer thread.
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

/** `PRAGMA synchronous` values by number; OFF (0) becomes NORMAL, never less durable than asked. */
const SYNCHRONOUS = ['NORMAL', 'NORMAL', 'FULL', 'EXTRA'] as const;
const THREAD = new URL('./commit-thread.mjs', import.meta.url);

/** The options that make the writer thread's connection behave like `db`'s. */
export function writerOptions(db: Db): WriterOptions {
  return {
    path: db.path,
    readonly: db.sqlite.readonly,
    synchronous: SYNCHRONOUS[db.sqlite.pragma('synchronous', { simple: true }) as number] ?? 'FULL',
    busyTimeoutMs: db.sqlite.pragma('busy_timeout', { simple: true }) as number,
  };
}

/** Batches call writes onto a writer thread; see the module note. */
export class GroupCommit {
  private worker: Worker | null = null;
  private queue: Pending[] = [];
  private inFlight: Pending[] | null = null;
  private batchId = 0;
  private scheduled = false;
  private closed = false;
  /** Batches committed so far and the writes they held (for the bench and `/metrics`). */
  readonly stats = { batches: 0, writes: 0 };

  /**
   * @param onFlush called after each committed batch with its number of writes and the seconds
   *   the writer thread spent on it (the commit's fsync included), for metrics.
   */
  constructor(
    private readonly options: WriterOptions,
    private readonly onFlush?: (writes: number, seconds: number) => void,
  ) {}

  /**
   * Queues a write for the next batch. Audit details are redacted here, on the thread that knows
   * the registered secrets, before they cross to the writer thread.
   * @returns once the write's batch is committed.
   * @throws (rejects with) an Error carrying the SQLite `code` when the write failed (its savepoint
   *   rolled back), or ApiError 503 `audit_unavailable` when the batch could not commit or the
   *   writer thread is gone.
   */
  run(write: CallWrite): Promise<void> {
    if (this.closed) return Promise.reject(unavailable('the broker is stopping'));
    const input = write.audit.input;
    if (input.detail) write.audit.input = { ...input, detail: redact(input.detail) };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.scheduled && this.inFlight === null) {
        this.scheduled = true;
        setImmediate(() => this.post());
      }
    });
  }

  /** Waits for queued writes, then stops the writer thread. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight !== null || this.queue.length > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(THREAD, { workerData: this.options });
    worker.unref();
    worker.on('message', (reply: BatchReply) => this.settle(reply));
    worker.on('error', (err) => this.lost(worker, err.message));
    worker.on('exit', (code) => this.lost(worker, `the writer thread exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private post(): void {
    this.scheduled = false;
    if (this.inFlight !== null || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.inFlight = batch;
    this.batchId += 1;
    try {
      const worker = this.thread();
      worker.ref(); // a batch in flight keeps the process alive until it is answered
      worker.postMessage({ id: this.batchId, writes: batch.map((p) => p.write) });
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
    }
  }

  private settle(reply: BatchReply): void {
    const batch = this.inFlight;
    if (batch === null || reply.id !== this.batchId) return;
    this.inFlight = null;
    if (this.queue.length === 0) this.worker?.unref();
    if ('failure' in reply) {
      rejectAll(batch, unavailable(reply.failure));
    } else {
      this.stats.batches += 1;
      this.stats.writes += batch.length;
      this.onFlush?.(batch.length, reply.seconds);
      batch.forEach((p, i) => {
        const r = reply.results[i];
        if (r === null) p.resolve();
        else p.reject(Object.assign(new Error(r?.message ?? 'the write was not stored'), { code: r?.code }));
      });
    }
    this.post();
  }

  /** The writer thread died: fail what it held and what waits; the next write starts a new one. */
  private lost(worker: Worker, why: string): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.fail(why);
  }

  private fail(why: string): void {
    const batch = this.inFlight ?? [];
    this.inFlight = null;
    const waiting = this.queue;
    this.queue = [];
    rejectAll([...batch, ...waiting], unavailable(why));
  }
}

function rejectAll(batch: Pending[], err: ApiError): void {
  for (const p of batch) p.reject(err);
}

function unavailable(cause: string): ApiError {
  return new ApiError('audit_unavailable', 'The call and its audit rows could not be stored, so the broker refused it.', { cause });
}
