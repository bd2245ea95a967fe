/**
 * The demo's child processes: one `broker serve` (bin/broker.js over the `dist/` build, the
 * JavaScript `npm start` runs) and the `broker` CLI verbs an operator or an approver would type.
 * Every child is tracked, so {@link stopAll} can end them on any exit path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { packagePath } from '../../src/platform/paths.js';

/** The `broker` CLI entry point, run with `process.execPath`. */
const BIN = packagePath('bin/broker.js');

/** Children still running. */
const live = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * The environment a child runs with: this process's, without any `BROKER_*`, `GITHUB_*` or
 * `CLOUDLOGS_*` variable of the machine (the demo must not reach a real data directory, a real
 * GitHub or a real Google project), plus `vars`.
 */
export function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(BROKER|GITHUB|CLOUDLOGS)_/.test(k)) delete env[k];
  return { ...env, ...vars };
}

/** A running `broker serve`. */
export interface BrokerProcess {
  /** `http://127.0.0.1:<port>`, from its "broker listening" log line. */
  url: string;
  pid: number;
}

/**
 * Starts `broker serve` with `env` (over {@link childEnv}; `BROKER_PORT=0` picks a free port) and
 * waits for its "broker listening" line.
 * @param onLine receives each line it prints (stdout and stderr), e.g. to echo them.
 * @throws Error with its output when it exits first or does not listen within `timeoutMs`.
 */
export function startBrokerProcess(env: Record<string, string>, onLine: (line: string) => void, timeoutMs = 30_000): Promise<BrokerProcess> {
  const child = track(spawn(process.execPath, [BIN, 'serve'], { cwd: packagePath(), env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
  const logs: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker serve did not listen within ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`broker serve exited (${signal ?? code}) before listening:\n${logs.join('\n')}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const onOutput = (line: string) => {
      logs.push(line);
      onLine(line);
      const m = /"url":"(http:\/\/[^"]+)".*"msg":"broker listening"/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, pid: child.pid! });
      }
    };
    createInterface({ input: child.stdout! }).on('line', onOutput);
    createInterface({ input: child.stderr! }).on('line', onOutput);
  });
}

/** A finished CLI run. */
export interface CliRun {
  /** Exit code (null when a signal ended it). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `broker <args>` to completion with `env` (over {@link childEnv}).
 * @param cwd its working directory (default the package root).
 * @throws Error when it cannot be started or runs longer than `timeoutMs` (then it is killed).
 */
export function runBrokerCli(args: string[], env: Record<string, string>, cwd = packagePath(), timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker ${args.join(' ')} ran longer than ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Ends every child still running: SIGTERM (the broker finishes its requests in flight, closes its
 * database and exits 0), then SIGKILL for any still alive after `graceMs`.
 * @returns once all of them have exited.
 */
export async function stopAll(graceMs = 10_000): Promise<void> {
  const children = [...live];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}
