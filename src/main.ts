/**
 * The `broker` CLI: `serve`, `backup`, and the verbs each capability registers (`secrets`,
 * `audit`, `grants` (with `grants requests`), `approvers`, `approve`, `token`, `tasks`, `runs`, `calls`, `mcp`). Run `broker --help`.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './app/cli.js';
import { CliExit } from './platform/cli.js';

const program = new Command('broker')
  .description('NanoClaw OS External Access Broker')
  .showHelpAfterError()
  // Options belong to the command they follow: `broker token --subject a` mints, `broker token
  // revoke --subject a` revokes (commander's positional options; no other command has options of
  // its own besides its subcommands', so nothing else changes).
  .enablePositionalOptions()
  .exitOverride();

registerCommands(program);

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
