/**
 * Starts the fixture broker process (`fixtures/serve.ts`: `runBroker` with the test provider) for
 * tests that need a real serving process: crash recovery, instance leases.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/harness.js';

const FIXTURE = path.join(REPO_ROOT, 'test/calls/fixtures/serve.ts');

/** A running fixture broker. */
export interface Served {
  child: ChildProcess;
  url: string;
  /** Request ids of the attempts this process reported. */
  attempts: string[];
  /** Resolves once `requestId` has been attempted. */
  attempted(requestId: string): Promise<void>;
  /** Releases the calls waiting in its test provider (`params.wait`). */
  release(): void;
  /** Makes later `params.wait` calls wait again (after a {@link Served.release}). */
  hold(): void;
  /** Everything it printed so far. */
  output(): string;
  exited: Promise<number | null>;
}

/** Starts the fixture broker on `env` (merged over process.env) and waits for its listening line. */
export function serveFixture(env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const attempts: string[] = [];
  const waiters: { id: string; resolve: () => void }[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start:\n${out}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const m of d.toString().matchAll(/"attempt":\{[^}]*"requestId":"([^"]+)"/g)) {
        attempts.push(m[1]!);
        for (const w of waiters.filter((w) => w.id === m[1])) w.resolve();
      }
      const listening = /"url":"(http:\/\/[^"]+)".*"msg":"broker listening"/.exec(out);
      if (listening) {
        clearTimeout(timer);
        resolve({
          child,
          url: listening[1]!,
          attempts,
          attempted: (id) => new Promise<void>((r) => (attempts.includes(id) ? r() : waiters.push({ id, resolve: r }))),
          release: () => child.stdin!.write('release\n'),
          hold: () => child.stdin!.write('hold\n'),
          output: () => out,
          exited,
        });
      }
    });
    void exited.then((code) => reject(new Error(`broker exited with ${code}:\n${out}`)));
  });
}
