/**
 * The `docker run` runner of docs/runner.md against a real Docker engine: skipped, with the reason
 * printed, when `docker info` fails (no CLI, no engine, no permission).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { pass, policiesWith, readyTask } from './helpers.js';

function dockerUnavailable(): string | null {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    return null;
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer; message: string };
    return e.code === 'ENOENT' ? 'the docker CLI is not installed' : `docker info failed: ${(e.stderr?.toString() || e.message).trim().split('\n')[0]}`;
  }
}

const reason = dockerUnavailable();
if (reason) console.log(`[runner/docker.test] skipping the docker run test: ${reason}`);

let broker: TestBroker | null = null;
afterEach(async () => {
  await broker?.deps.runner.idle();
  await broker?.stop();
  broker = null;
});

describe.skipIf(reason !== null)('runner: docker run', () => {
  it('starts a container with the context pack and secret mounted read-only, and records its exit', async () => {
    const out = tempDir('runner-docker-');
    const policies = policiesWith({
      runners: {
        developer: {
          command: [
            'docker', 'run', '--rm', '--network', 'none',
            '-v', '{context_file}:/workspace/context.json:ro',
            '-v', '{secret_file}:/workspace/.ipc_secret:ro',
            '-v', `${out}:/out`,
            'busybox', 'sh', '-c', 'cp /workspace/context.json /out/seen.json && test -s /workspace/.ipc_secret',
          ],
          timeout_s: 300,
          concurrency: 1,
        },
      },
    });
    broker = await startBroker({ env: { BROKER_POLICIES_DIR: policies } });
    const id = await readyTask(broker);
    await pass(broker);
    await broker.deps.runner.idle();
    const [run] = await broker.deps.stores.runs.ofTask(id);
    expect(run, run?.outputTail ?? '').toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'seen.json'), 'utf8'))).toMatchObject({ task: { id } });
  });
});
