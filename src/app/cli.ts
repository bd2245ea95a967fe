/**
 * The `broker` command line as the application wires it: `serve` and `backup` are the
 * application's own verbs; every capability registers its verbs with {@link withDeps}, which opens
 * the broker's dependencies from the `BROKER_*` environment for one command and closes them after.
 */
import pino from 'pino';
import type { Command } from 'commander';
import { registerAuditCommands } from '../modules/audit/cli.js';
import { registerCallCommands } from '../modules/calls/cli.js';
import { registerApproveCallCommand } from '../modules/calls/approval/cli.js';
import { registerGrantsCommands } from '../modules/grants/cli.js';
import { registerGrantRequestCommands } from '../modules/grant-requests/cli.js';
import { registerIdentityCommands } from '../modules/identity/cli.js';
import { registerKernelCommands } from '../modules/kernel/cli.js';
import { registerRunnerCommands } from '../modules/runner/cli.js';
import { registerSwitchCommands } from '../modules/switches/cli.js';
import { registerWebhookCommands } from '../modules/webhooks/cli.js';
import { registerTokenCommands } from '../modules/tokens/cli.js';
import { registerMcpCommands } from '../mcp/cli.js';
import { CliExit, cliOperator, printJson } from '../platform/cli.js';
import { loadConfig, type Config } from '../platform/config.js';
import { describeDatabase } from '../platform/db/url.js';
import { backupDatabase } from '../platform/db/backup.js';
import { assertSqliteNotServed } from '../platform/lease/lease.js';
import { createLogger } from '../platform/log.js';
import { closeDeps, createDeps, sqliteDeps, type Deps } from './deps.js';
import { runBroker } from './server.js';

/**
 * Runs a CLI action against the broker's database and policies (from the `BROKER_*`
 * environment), logging to stderr so stdout stays machine-readable, and closes them afterwards.
 * Each module's `registerXCommands` takes it as its `CliRunner`.
 * @returns the action's result.
 */
export async function withDeps<T>(fn: (deps: Deps) => T | Promise<T>): Promise<T> {
  const config = loadConfig();
  const deps = await createDeps(config, { logger: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, pino.destination(2)) });
  try {
    return await fn(deps);
  } finally {
    await closeDeps(deps);
  }
}

/**
 * Registers every verb of `broker`, in the order `broker --help` lists them: `serve`, `secrets`,
 * `backup`, `audit`, `grants`, `approvers`, `approve`, `token`, `tasks`, `runs`, `calls`, `mcp`.
 */
export function registerCommands(program: Command): void {
  program
    .command('serve')
    .description('start the broker (BROKER_HOST:BROKER_PORT, default 127.0.0.1:8787)')
    .action(serve);
  registerIdentityCommands(program, withDeps);
  program
    .command('backup')
    .description('write a consistent copy of the database while the broker runs (mode 0600), checked and audited; master.key and token.key are not in it')
    .requiredOption('--out <file>', 'the copy to write (never overwritten)')
    .action((opts: { out: string }) => {
      refuseBackupOnPostgres(loadConfig());
      return withDeps((deps) => {
        const report = backupDatabase(sqliteDeps(deps).db, opts.out, deps.clock, cliOperator());
        printJson(report);
        process.stderr.write(`backed up to ${report.path}; keep ${deps.paths.masterKey} (it decrypts the group keys in it) and ${deps.paths.tokenKey} safe apart from it\n`);
      });
    });
  registerAuditCommands(program, withDeps);
  registerGrantsCommands(program, withDeps);
  registerGrantRequestCommands(program, withDeps);
  registerTokenCommands(program, withDeps);
  registerKernelCommands(program, withDeps);
  registerRunnerCommands(program, withDeps, cliOperator);
  registerCallCommands(program, withDeps);
  registerApproveCallCommand(program, withDeps);
  registerSwitchCommands(program, withDeps, cliOperator);
  registerWebhookCommands(program, withDeps, cliOperator);
  registerMcpCommands(program);
}

/**
 * `broker backup` copies the SQLite file; a PostgreSQL database is backed up with the server's own
 * tool, `pg_dump`, which takes a consistent snapshot while every replica keeps serving.
 * @throws CliExit (exit 1) on PostgreSQL, before anything is opened or written.
 */
export function refuseBackupOnPostgres(config: Config): void {
  if (config.database.engine !== 'postgres') return;
  throw new CliExit(
    `broker backup copies the embedded SQLite file, but this broker uses PostgreSQL (${describeDatabase(config.database)}); nothing was written. ` +
      'Back it up with pg_dump, e.g. pg_dump --format=custom --file=broker.dump "$BROKER_DATABASE_URL", and keep master.key, token.key and checkpoint.key ' +
      `(in ${config.dataDir}) safe apart from it; see docs/operations.md.`,
  );
}

async function serve(): Promise<void> {
  const config = loadConfig();
  // Before createDeps, which may migrate or write: a served SQLite file is left exactly as it is
  // (on PostgreSQL every replica holds a lease of its own).
  if (config.database.engine === 'sqlite') assertSqliteNotServed(config.dbPath, Date.now());
  await runBroker(await createDeps(config));
}
