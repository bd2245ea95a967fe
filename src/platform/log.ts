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

/**
 * Environment variables that make a dependency print request or response data on stderr itself,
 * outside this logger and its redaction. `GOOGLE_SDK_NODE_LOGGING` (google-logging-utils, read by
 * google-auth-library, gcp-metadata, gaxios and google-gax) prints, among others, the metadata
 * server's token response with the access token in clear.
 */
export const UNREDACTED_DEBUG_VARIABLES = ['GOOGLE_SDK_NODE_LOGGING'] as const;

/**
 * Removes {@link UNREDACTED_DEBUG_VARIABLES} from `env`, so credentials never reach a log (the
 * Google libraries are imported on a provider's first call, after this runs at start-up).
 * @returns the names removed (empty when none was set), for a warning.
 */
export function dropUnredactedDebug(env: NodeJS.ProcessEnv = process.env): string[] {
  const removed = UNREDACTED_DEBUG_VARIABLES.filter((name) => env[name] !== undefined);
  for (const name of removed) delete env[name];
  return removed;
}
