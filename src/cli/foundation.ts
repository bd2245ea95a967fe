import type { Command } from 'commander';
import { verifyChain } from '../audit/trail.js';
import { loadConfig } from '../config.js';
import { createDeps } from '../deps.js';
import { exportSecretFile } from '../secrets/keys.js';
import { runBroker } from '../server.js';
import { CliExit, printJson, withDeps } from './common.js';

/** Registers `serve`, `secrets export|rotate` and `audit verify`. */
export function registerFoundationCommands(program: Command): void {
  program
    .command('serve')
    .description('start the broker (BROKER_HOST:BROKER_PORT, default 127.0.0.1:8787)')
    .action(serve);

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
      withDeps((deps) => {
        requireGroup(deps.groups, opts.group);
        const key = deps.keys.rotate(opts.group, 'operator:cli');
        printJson({ group: key.group, keyid: key.keyid, previous_verifies_for_s: deps.config.keyGraceS });
      }),
    );

  const audit = program.command('audit').description('the audit trail');
  audit
    .command('verify')
    .description('recompute the hash chain; exits 1 at the first broken seq')
    .action(() =>
      withDeps((deps) => {
        const verdict = verifyChain(deps.db);
        if (!verdict.ok) throw new CliExit(`audit chain broken at seq ${verdict.brokenSeq}: ${verdict.reason} (${verdict.rows} rows verified before it)`);
        process.stdout.write(`audit chain ok: ${verdict.rows} rows verified\n`);
      }),
    );
}

function requireGroup(groups: ReadonlyMap<string, unknown>, group: string): void {
  if (!groups.has(group)) throw new CliExit(`unknown group "${group}"; groups: ${[...groups.keys()].join(', ')}`);
}

async function serve(): Promise<void> {
  await runBroker(createDeps(loadConfig()));
}
