/**
 * CLI verbs of the audit trail: `broker audit verify` (the hash chain, against the signed
 * checkpoints, from the database or from an export file on any machine), `broker audit head` (an
 * anchor to record off the host) and `broker audit export` (JSON Lines).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import ms from 'ms';
import { ChainChecker, parseAnchor, type ChainPoint } from '../../platform/audit/chain.js';
import { verifyChainParallel } from '../../platform/audit/verify-parallel.js';
import { CheckpointError, readCheckpoints, type Checkpoint } from '../../platform/audit/checkpoints.js';
import { chainHead, exportLines, verifyExport, type ExportVerdict } from '../../platform/audit/export.js';
import { CliExit, printJson, type CliRunner } from '../../platform/cli.js';
import type { Config } from '../../platform/config.js';
import type { Db } from '../../platform/db/open.js';

/** What the `broker audit` verbs run on: the database and where the signed checkpoints are. */
export interface AuditCliDeps {
  db: Db;
  config: Pick<Config, 'checkpointDir'>;
}

/** Registers `audit verify|head|export`; `withDeps` opens the broker's database for each. */
export function registerAuditCommands(program: Command, withDeps: CliRunner<AuditCliDeps>): void {
  const audit = program.command('audit').description('the audit trail');
  audit
    .command('verify')
    .description(
      'recompute the hash chain over the stored bytes and check it against the signed checkpoints (BROKER_CHECKPOINT_DIR); exits 1 at the first broken seq. --file checks a JSON Lines export instead, without the database',
    )
    .option('--file <path>', 'a `broker audit export` file to check, on any machine')
    .option('--anchor <seq:hash>', 'a head recorded earlier (`broker audit head`): that row must still carry that hash')
    .option('--checkpoints <dir>', 'a directory of signed checkpoints to check against (default for the database: BROKER_CHECKPOINT_DIR; --file: none)')
    .action((opts: { file?: string; anchor?: string; checkpoints?: string }) => {
      const anchor = opts.anchor === undefined ? undefined : anchorOption(opts.anchor);
      return opts.file === undefined ? verifyDatabase(withDeps, anchor, opts.checkpoints) : verifyFile(opts.file, anchor, opts.checkpoints);
    });
  audit
    .command('head')
    .description('print the newest row\'s seq and hash, as an anchor to record off the host: {seq, hash, ts, anchor}')
    .action(() =>
      withDeps((deps) => {
        const head = chainHead(deps.db);
        printJson(head ? { ...head, anchor: `${head.seq}:${head.hash}` } : { seq: 0, hash: null, ts: null, anchor: null });
      }),
    );
  audit
    .command('export')
    .description('write the trail as JSON Lines, {seq, ts, actor, kind, subject, detail, prev_hash, hash} per line (stdout, or --out with mode 0600)')
    .option('--since <seq>', 'only rows after this seq', '0')
    .option('--out <file>', 'write to this file instead of stdout')
    .action((opts: { since: string; out?: string }) => {
      if (!/^[0-9]{1,15}$/.test(opts.since)) throw new CliExit('--since must be a seq (a non-negative integer)');
      return withDeps(async (deps) => {
        const out = opts.out === undefined ? process.stdout : fs.createWriteStream(opts.out, { mode: 0o600 });
        let rows = 0;
        const counted = function* () {
          for (const line of exportLines(deps.db, Number(opts.since))) (rows += 1, yield line);
        };
        try {
          await pipeline(Readable.from(counted()), out, { end: opts.out !== undefined });
        } catch (err) {
          // `broker audit export | head`: the reader had enough. Stop quietly, like any Unix filter.
          if (opts.out === undefined && (err as NodeJS.ErrnoException).code === 'EPIPE') return;
          throw err;
        }
        process.stderr.write(`exported ${rows} audit rows${opts.out ? ` to ${opts.out}` : ''}\n`);
      });
    });
}

function anchorOption(text: string): ChainPoint {
  const anchor = parseAnchor(text);
  if (!anchor) throw new CliExit('--anchor must be <seq>:<sha256 hex>, as `broker audit head` prints it');
  return anchor;
}

function verifyDatabase(withDeps: CliRunner<AuditCliDeps>, anchor?: ChainPoint, checkpointsDir?: string): Promise<void> {
  return withDeps(async (deps) => {
    const dir = checkpointsDir ?? deps.config.checkpointDir;
    const checkpoints = await checkpointsIn(dir, checkpointsDir !== undefined);
    const checker = new ChainChecker(anchor, checkpoints);
    const verdict = await verifyChainParallel(deps.db, checker);
    if (!verdict.ok) throw new CliExit(`audit chain broken at seq ${verdict.brokenSeq}: ${verdict.reason} (${verdict.rows} rows verified before it)`);
    const head = checker.head ? `; head ${checker.head.seq}:${checker.head.hash}` : '';
    process.stdout.write(
      `audit chain ok: ${verdict.rows} rows verified${anchor ? `, anchor ${anchor.seq} matched` : ''}; ${coverage(checkpoints, dir, checker.start?.seq ?? 1, checker.head?.seq ?? 0)}${head}\n`,
    );
  });
}

async function verifyFile(file: string, anchor?: ChainPoint, checkpointsDir?: string): Promise<void> {
  const checkpoints = checkpointsDir === undefined ? [] : await checkpointsIn(checkpointsDir, true);
  let verdict: ExportVerdict;
  try {
    verdict = await verifyExport(file, anchor, checkpoints);
  } catch (err) {
    throw new CliExit(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!verdict.ok) {
    const at = verdict.seq === null ? `line ${verdict.line}` : `line ${verdict.line} (seq ${verdict.seq})`;
    throw new CliExit(`audit export broken at ${at}: ${verdict.reason} (${verdict.rows} rows verified before it)`);
  }
  if (!verdict.start || !verdict.head) throw new CliExit(`${file} holds no audit rows`);
  const from = verdict.start.seq === 1 ? 'the genesis hash' : `prev_hash ${verdict.start.prevHash} (seq ${verdict.start.seq - 1}'s hash)`;
  const covered = checkpointsDir === undefined ? '' : `; ${coverage(checkpoints, checkpointsDir, verdict.start.seq, verdict.head.seq)}`;
  process.stdout.write(
    `audit export ok: ${verdict.rows} rows verified, seq ${verdict.start.seq}–${verdict.head.seq}, starting from ${from}${anchor ? `, anchor ${anchor.seq} matched` : ''}${covered}; head ${verdict.head.seq}:${verdict.head.hash}\n`,
  );
}

/** The verified checkpoints in `dir`, or a CliExit naming the one that does not verify. */
async function checkpointsIn(dir: string, mustExist: boolean): Promise<Checkpoint[]> {
  try {
    return await readCheckpoints(dir, mustExist);
  } catch (err) {
    if (err instanceof CheckpointError) throw new CliExit(`audit checkpoint does not verify: ${err.message}`);
    throw new CliExit(`cannot read the checkpoints in ${dir}: ${(err as Error).message}`);
  }
}

/** What the newest checkpoint says about rows `first`–`last`, which verified against every checkpoint among them. */
function coverage(checkpoints: readonly Checkpoint[], dir: string, first: number, last: number): string {
  const newest = checkpoints.at(-1);
  if (!newest) return `no signed checkpoint in ${dir}, so removing or rewriting the newest rows would go unnoticed`;
  const ago = Date.now() - Date.parse(newest.ts);
  const when = ago >= 0 ? `signed ${ms(ago, { long: true })} ago` : `signed ${newest.ts}, in the future`;
  if (newest.seq < first) return `newest checkpoint seq ${newest.seq} (${when}) is before seq ${first}, so no checkpoint covers these rows`;
  const after = last - newest.seq;
  return `newest checkpoint seq ${newest.seq} (${when}, key ${newest.kid}) covers ${newest.seq} rows${after > 0 ? `; ${after} rows after it not yet covered` : ''}`;
}
