/**
 * CLI verbs of the groups' HMAC keys: `broker secrets export` (write a group's current key for its
 * container) and `broker secrets rotate` (the next key version, the previous one verifying for the
 * grace).
 */
import type { Command } from 'commander';
import { CliExit, cliOperator, printJson, type CliRunner } from '../../platform/cli.js';
import type { Config } from '../../platform/config.js';
import type { Groups } from './groups.js';
import { exportSecretFile, type KeyStore } from './keys.js';

/** What the `broker secrets` verbs run on. */
export interface IdentityCliDeps {
  groups: Groups;
  keys: KeyStore;
  config: Pick<Config, 'keyGraceS'>;
}

/** Registers `secrets export|rotate`; `withDeps` opens the broker's database for each. */
export function registerIdentityCommands(program: Command, withDeps: CliRunner<IdentityCliDeps>): void {
  const secrets = program.command('secrets').description("manage the groups' HMAC keys");
  secrets
    .command('export')
    .description("write DIR/.ipc_secret (mode 0600) with the group's current key, for its container")
    .requiredOption('--group <group>', 'agent group')
    .requiredOption('--out <dir>', 'directory to write .ipc_secret into')
    .action((opts: { group: string; out: string }) =>
      withDeps((deps) => {
        requireGroup(deps.groups, opts.group);
        const file = exportSecretFile(opts.out, deps.keys.current(opts.group));
        process.stdout.write(`${file}\n`);
      }),
    );
  secrets
    .command('rotate')
    .description('create the next key version; the previous one verifies for BROKER_KEY_GRACE_S more seconds')
    .requiredOption('--group <group>', 'agent group')
    .action((opts: { group: string }) =>
      withDeps(async (deps) => {
        requireGroup(deps.groups, opts.group);
        const key = await deps.keys.rotate(opts.group, cliOperator());
        printJson({ group: key.group, keyid: key.keyid, previous_verifies_for_s: deps.config.keyGraceS });
      }),
    );
}

function requireGroup(groups: ReadonlyMap<string, unknown>, group: string): void {
  if (!groups.has(group)) throw new CliExit(`unknown group "${group}"; groups: ${[...groups.keys()].join(', ')}`);
}
