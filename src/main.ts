/**
 * The `broker` CLI: `serve`, `secrets`, `audit`, and the verbs each capability registers
 * (`tasks`, `grants`, `approvers`, `approve`, `token`, `calls`). Run `broker --help`.
 */
import { Command, CommanderError } from 'commander';
import { CliExit } from './cli/common.js';
import { registerFoundationCommands } from './cli/foundation.js';
import { registerKernelCommands } from './kernel/cli.js';

const program = new Command('broker')
  .description('NanoClaw OS External Access Broker')
  .showHelpAfterError()
  .exitOverride();

registerFoundationCommands(program);
registerKernelCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof CliExit) {
    process.stderr.write(`${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`broker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
