/**
 * `npm run demo`: the broker's main job, end to end, on one machine with no GitHub credentials.
 * Builds `dist/` (as `npm start` does), then starts:
 * - a recorded GitHub on 127.0.0.1 (`scripts/demo/github.ts`: the provider tests' recordings);
 * - a real `broker serve` process on a free port, with a fresh data directory in a temporary
 *   directory, `GITHUB_API_URL` pointing at the recorded GitHub and its fixture token as
 *   `GITHUB_TOKEN`, and the dispatch loop every 200 ms;
 * and plays the story of `scripts/demo/story.ts`, printing each step with its HTTP status (or the
 * CLI's exit code) and the receipt's verdict.
 *
 * Usage: `npm run demo [-- --json] [-- --verbose]`; with `BROKER_DATABASE_URL=postgres://…` the
 * broker and the CLI run on that PostgreSQL database (an empty one) instead of a SQLite file. `--json` prints one JSON object per line
 * (`event`: `start`, `step`, `check`, `end`); `--verbose` echoes the broker's log lines on stderr.
 * Exits 0 when every step answered as expected, 1 otherwise (130/143 on SIGINT/SIGTERM), and in
 * every case first stops the broker and the recorded GitHub and removes the temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient, loadCredential } from '../src/client/index.js';
import { packagePath } from '../src/platform/paths.js';
import { FIXTURE_TOKEN, startRecordedGitHub, type RecordedGitHub } from './demo/github.js';
import { runBrokerCli, startBrokerProcess, stopAll } from './demo/processes.js';
import { DemoFailure, Reporter } from './demo/report.js';
import { playStory, REQUEST_TIMEOUT_MS } from './demo/story.js';

/** The whole demo may take this long, in ms, before it gives up (it takes seconds). */
const DEMO_TIMEOUT_MS = 180_000;

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (a !== '--json' && a !== '--verbose') {
    process.stderr.write(`demo: unknown argument ${a}; usage: npm run demo [-- --json] [-- --verbose]\n`);
    process.exit(2);
  }
}
const report = new Reporter(args.has('--json'));

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-demo-'));
let github: RecordedGitHub | null = null;
/** The broker's log lines, shown when a step fails. */
const brokerLogs: string[] = [];

let ending: Promise<never> | null = null;
/**
 * Ends the demo, once, whichever comes first (the story's end, a failure, a signal, the timeout):
 * stops every child, closes the recorded GitHub, removes the temporary directory, prints the last
 * line and exits with `code`, or 1 when the cleanup failed.
 */
function finish(code: number, error: string | null): Promise<never> {
  ending ??= (async () => {
    let cleaned = true;
    await stopAll().catch(() => (cleaned = false));
    await github?.close().catch(() => (cleaned = false));
    try {
      fs.rmSync(tempDir, { recursive: true, force: true });
    } catch {
      cleaned = false;
    }
    report.end({ ok: code === 0 && cleaned, error, cleaned });
    process.exit(code === 0 && !cleaned ? 1 : code);
  })();
  return ending;
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => void finish(code, `interrupted by ${signal}`));
}

/** Sets up the stage and plays the story. */
async function run(): Promise<void> {
  const dataDir = path.join(tempDir, 'data');
  const workDir = path.join(tempDir, 'work');
  fs.mkdirSync(workDir, { recursive: true });
  github = await startRecordedGitHub();
  // BROKER_DATABASE_URL (postgres://…) plays the story on that PostgreSQL database; unset, on SQLite in dataDir.
  const databaseUrl = process.env['BROKER_DATABASE_URL'];
  const database: Record<string, string> = databaseUrl ? { BROKER_DATABASE_URL: databaseUrl } : {};
  // The package's policies, except that merge_pull runs under its L3 grant without a per-call
  // approval (policies/approvals.json holds it by default): the story shows the two-man rule on
  // the grant; per-call approval is shown in README "Per-call approval".
  const policiesDir = path.join(tempDir, 'policies');
  fs.cpSync(packagePath('policies'), policiesDir, { recursive: true });
  fs.writeFileSync(path.join(policiesDir, 'approvals.json'), JSON.stringify({ per_call: {} }));
  const cliEnv: Record<string, string> = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: policiesDir, BROKER_LOG_LEVEL: 'warn', ...database };
  const broker = await startBrokerProcess(
    {
      ...cliEnv,
      BROKER_HOST: '127.0.0.1',
      BROKER_PORT: '0',
      BROKER_LOG_LEVEL: 'info',
      BROKER_DISPATCH_INTERVAL_MS: '200',
      GITHUB_TOKEN: FIXTURE_TOKEN,
      GITHUB_API_URL: github.apiUrl,
    },
    (line) => {
      brokerLogs.push(line);
      if (args.has('--verbose')) process.stderr.write(`[broker] ${line}\n`);
    },
  );
  report.start({ broker: broker.url, github: github.origin, temp_dir: tempDir, broker_pid: broker.pid });

  report.step(0, 'Setting up: an operator token, and the agent groups\' secrets');
  const token = await runBrokerCli(['token', '--role', 'operator', '--subject', 'demo-operator', '--ttl', '1h'], cliEnv);
  report.check({ step: 0, what: 'an operator bearer token (1 hour)', via: 'broker token --role operator --subject demo-operator --ttl 1h', status: token.code, expected: 0, verdict: token.code === 0 ? 'ok' : 'failed', code: null, note: token.stderr.trim() });
  const clients: Record<string, BrokerClient> = {};
  for (const group of ['main', 'developer']) {
    const out = path.join(tempDir, 'agents', group);
    const exported = await runBrokerCli(['secrets', 'export', '--group', group, '--out', out], cliEnv);
    report.check({ step: 0, what: `${group}'s .ipc_secret, as its container gets it`, via: `broker secrets export --group ${group} --out agents/${group}`, status: exported.code, expected: 0, verdict: exported.code === 0 ? 'ok' : 'failed', code: null, note: exported.code === 0 ? '' : exported.stderr.trim() });
    clients[group] = new BrokerClient({
      baseUrl: broker.url,
      credential: loadCredential(path.join(out, '.ipc_secret')),
      fetch: (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
    });
  }

  await playStory({ url: broker.url, operatorToken: token.stdout.trim(), main: clients['main']!, developer: clients['developer']!, cliEnv, workDir, github, report });
}

setTimeout(() => void finish(1, `the demo did not finish within ${DEMO_TIMEOUT_MS / 1000} s`), DEMO_TIMEOUT_MS);
try {
  await run();
} catch (err) {
  if (brokerLogs.length > 0) process.stderr.write(`\nthe broker's last log lines:\n${brokerLogs.slice(-15).join('\n')}\n`);
  await finish(1, err instanceof DemoFailure ? err.message : `${(err as Error).stack ?? String(err)}`);
}
await finish(0, null);
