/** What every module's CLI commands share: the exit error and the JSON printer. */

/** Thrown by a CLI action to end with a message on stderr and the given exit code. */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Prints a value as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
