/**
 * The `broker` CLI: `serve`, `secrets`, `audit`, and the verbs each capability registers
 * (`tasks`, `grants`, `approvers`, `approve`, `token`, `calls`). Run `broker --help`.
 */
import { Command, CommanderError } from 'commander';
import { CliExit, withDeps } from './app/cli-common.js';
import { registerFoundationCommands } from './app/cli-foundation.js';
import { registerGrantsCommands } from './modules/grants/cli.js';
import { registerTokenCommands } from './modules/tokens/cli.js';
import { registerKernelCommands } from './modules/kernel/cli.js';
import { registerCallCommands } from './modules/calls/cli.js';
import { registerMcpCommands } from './mcp/cli.js';

const program = new Command('broker')
  .description('NanoClaw OS External Access Broker')
  .showHelpAfterError()
  // Options belong to the command they follow: `broker token --subject a` mints, `broker token
  // revoke --subject a` revokes (commander's positional options; no other command has options of
  // its own besides its subcommands', so nothing else changes).
  .enablePositionalOptions()
  .exitOverride();

registerFoundationCommands(program);
registerGrantsCommands(program);
registerTokenCommands(program);
registerKernelCommands(program, withDeps);
registerCallCommands(program);
registerMcpCommands(program);

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
