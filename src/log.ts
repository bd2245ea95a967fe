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
 * Creates the JSON logger (pino). Every string in a log line, message and fields alike, passes
 * through the audit trail's secret redaction, so no credential reaches a log.
 * @param level pino level (`info`, `debug`, `silent`, …).
 * @param destination where lines go. Default: stdout through an asynchronous sonic-boom, which
 *   writes at once when idle and coalesces lines into one write under load (pino flushes it on
 *   exit). Tests pass a stream to capture lines.
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
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
