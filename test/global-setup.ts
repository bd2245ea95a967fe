/**
 * vitest global setup: builds `dist/` once per test run (`npm run build`, incremental), so every
 * test that starts the real `broker` process (`bin/broker.js`) runs the JavaScript compiled from
 * the sources under test, the same build `npm start` and the Docker image run.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Runs `tsc -p tsconfig.build.json`; throws with tsc's output when the build fails. */
export function setup(): void {
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed, so no test ran:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}
