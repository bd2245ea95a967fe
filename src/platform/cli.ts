/**
 * What every `broker` CLI verb shares, whichever capability registers it: the error that ends a
 * command with a message and an exit code, JSON on stdout, the operator recorded as the actor,
 * durations as options, and {@link CliRunner}, the way a module's verbs reach the broker's
 * database without knowing how the application builds it (the app passes its `withDeps` in).
 */
import os from 'node:os';
import { parseDurationMs } from './config.js';

/** Thrown by a CLI action to end with a message on stderr and the given exit code. */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * Runs one CLI action against the broker's open dependencies and closes them afterwards; the
 * application's `withDeps` is one. A module's `registerXCommands(program, run)` declares the narrow
 * `D` it needs; the application's dependencies satisfy it structurally.
 * @returns the action's result.
 */
export type CliRunner<D> = <T>(fn: (deps: D) => T | Promise<T>) => Promise<T>;

/** Prints a value as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The actor recorded for an operator using the CLI on the broker host: `operator:<OS user>`
 * (characters outside `[A-Za-z0-9._@-]` become `_`).
 */
export function cliOperator(): string {
  const name = os.userInfo().username.replace(/[^A-Za-z0-9._@-]/g, '_') || 'unknown';
  return `operator:${name}`;
}

/**
 * Parses a human duration (`90s`, `15m`, `8h`, `7d`; a bare number is seconds) with
 * {@link parseDurationMs}.
 * @param option the option's name, for the message (`--ttl`).
 * @returns whole seconds.
 * @throws CliExit when it is not a duration of at least one second.
 */
export function parseDurationS(text: string, option: string): number {
  const millis = parseDurationMs(text);
  if (millis === null || millis < 1000) throw new CliExit(`${option}: "${text}" is not a duration such as 90s, 15m, 8h or 7d`);
  return Math.floor(millis / 1000);
}
