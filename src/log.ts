import pino, { type Logger } from 'pino';
import { redact, redactString } from './audit/redact.js';

export type { Logger } from 'pino';

/**
 * Creates the JSON logger (pino). Every string in a log line, message and fields alike, passes
 * through the audit trail's secret redaction, so no credential reaches a log.
 * @param level pino level (`info`, `debug`, `silent`, …).
 * @param destination where lines go (default stdout); tests pass a stream to capture them.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'nanoclaw-broker' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (obj) => redact(obj) },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactString(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}
