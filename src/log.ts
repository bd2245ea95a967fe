import pino, { type Logger } from 'pino';
import { redact, redactString } from './audit/redact.js';

export type { Logger } from 'pino';

let lastMs = NaN;
let lastTime = '';
/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"<RFC 3339 UTC, ms>"`), formatting each millisecond
 * once: under load many lines share a millisecond, and `toISOString` was a few percent of a
 * request's CPU. Same output, same clock (`Date.now()`).
 */
function isoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastTime;
}

/**
 * A pino destination that gathers the lines of one event-loop turn and hands them to `sink` as
 * one write once the turn's I/O callbacks have run (`setImmediate`). Under load a turn answers
 * several requests, so their lines share one `write(2)`; an idle broker still writes each line
 * within its turn. Lines still pending when the process exits are written by an `exit` hook, and
 * `flush`/`flushSync` write them first (pino's `logger.flush()` calls `flush`).
 */
export class TurnBatchedDestination {
  private pending = '';
  private scheduled = false;
  private readonly drainNow = () => this.drain();

  /** @param sink where batches go; a synchronous sonic-boom, so a batch is written when handed over. */
  constructor(private readonly sink: pino.DestinationStream & { flush?(cb?: (err?: Error) => void): void; flushSync?(): void }) {}

  /** Queues one line (pino passes a string ending in `\n`); always `true` (never back-pressures). */
  write(line: string): boolean {
    this.pending += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainNow);
    }
    return true;
  }

  /** Hands the pending lines to the sink now. */
  drain(): void {
    this.scheduled = false;
    if (this.pending === '') return;
    const batch = this.pending;
    this.pending = '';
    this.sink.write(batch);
  }

  /** Writes the pending lines, then flushes the sink; `cb` after. */
  flush(cb?: (err?: Error) => void): void {
    this.drain();
    if (this.sink.flush) this.sink.flush(cb);
    else cb?.();
  }

  /** Writes the pending lines and flushes the sink synchronously. */
  flushSync(): void {
    this.drain();
    this.sink.flushSync?.();
  }
}

let stdoutDestination: TurnBatchedDestination | null = null;
/** The process's one stdout destination: turn-batched lines over a synchronous sonic-boom on fd 1. */
function stdout(): TurnBatchedDestination {
  if (stdoutDestination === null) {
    const destination = new TurnBatchedDestination(pino.destination({ dest: 1, sync: true }));
    process.once('exit', () => destination.drain());
    stdoutDestination = destination;
  }
  return stdoutDestination;
}

const { streamSym, chindingsSym } = pino.symbols;

/**
 * Writes the per-request line that `log.info({method, path, status, duration_ms}, 'request')`
 * writes, formatted here in one template instead of through pino's generic serialization, hooks
 * and formatters: `{"level":30,"time":…,<log's bindings>,"method":…,"path":…,"status":…,
 * "duration_ms":…,"msg":"request"}`. `method` and `path` are redacted as every logged string is.
 * Nothing is written when `info` is not enabled for `log`.
 * @param log a logger from {@link createLogger} (or a child of one).
 * @param durationMs rounded to 0.01 ms.
 * @param requestId when given, written as a `req_id` binding after `log`'s own (as a child
 *   `log.child({req_id})` would write it), without making the child.
 */
export function logRequest(log: Logger, method: string, path: string, status: number, durationMs: number, requestId?: string): void {
  if (!log.isLevelEnabled('info')) return;
  const l = log as unknown as Record<symbol, unknown>;
  const reqId = requestId === undefined ? '' : `,"req_id":${JSON.stringify(requestId)}`;
  const line = `{"level":${log.levels.values['info']}${isoTime()}${l[chindingsSym] as string}${reqId},"method":${JSON.stringify(redactString(method))},"path":${JSON.stringify(redactString(path))},"status":${status},"duration_ms":${Math.round(durationMs * 100) / 100},"msg":"request"}\n`;
  (l[streamSym] as pino.DestinationStream).write(line);
}

/**
 * Creates the JSON logger (pino). Every string in a log line, message and fields alike, passes
 * through the audit trail's secret redaction, so no credential reaches a log.
 * @param level pino level (`info`, `debug`, `silent`, …).
 * @param destination where lines go. Default: stdout through a {@link TurnBatchedDestination}:
 *   the lines of one event-loop turn go out in one synchronous write (no thread-pool round trip
 *   per line, as an asynchronous sonic-boom made), and pending lines are written on exit. Tests
 *   pass a stream to capture lines.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'nanoclaw-broker' },
      timestamp: isoTime,
      formatters: { log: (obj) => redact(obj) },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactString(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination ?? stdout(),
  );
}
