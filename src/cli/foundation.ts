import type { Command } from 'commander';
import { verifyChain } from '../audit/trail.js';
import { loadConfig } from '../config.js';
import { startDispatchLoop } from '../kernel/dispatch.js';
import { closeDeps, createDeps } from '../deps.js';
import { exportSecretFile } from '../secrets/keys.js';
import { startServer } from '../server.js';
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
  const config = loadConfig();
  const deps = createDeps(config);
  const running = await startServer(deps);
  deps.logger.info(
    { url: running.url, data_dir: deps.paths.dataDir, db: deps.paths.dbPath, master_key: deps.paths.masterKey, token_key: deps.paths.tokenKey, policies: deps.paths.policiesDir },
    'broker listening',
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'stopping: finishing requests in flight');
    stopDispatch();
    await running.stop();
    await closeDeps(deps);
    deps.logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  const stopDispatch = startDispatchLoop(deps);
}
