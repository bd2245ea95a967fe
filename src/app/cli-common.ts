import pino from 'pino';
import { loadConfig } from '../platform/config.js';
import { closeDeps, createDeps, type Deps } from './deps.js';
import { createLogger } from '../platform/log.js';

export { CliExit, printJson } from '../platform/cli.js';

/**
 * Runs a CLI action against the broker's database and policies (from the `BROKER_*`
 * environment), logging to stderr so stdout stays machine-readable, and closes them afterwards.
 * @returns the action's result.
 */
export async function withDeps<T>(fn: (deps: Deps) => T | Promise<T>): Promise<T> {
  const config = loadConfig();
  const deps = createDeps(config, { logger: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, pino.destination(2)) });
  try {
    return await fn(deps);
  } finally {
    await closeDeps(deps);
  }
}
