/**
 * A crash between claim and answer, with real processes: a broker process serving
 * `BROKER_IPC_DIR` is killed (SIGKILL) while the call of a claimed request file runs; the
 * restarted process recovers the call (`unknown_outcome`) before its file transport starts, then
 * handles the file still in `processing/` again and writes its answer: the replay of
 * `unknown_outcome`. The call ran once. A SIGTERM then stops the transport with the server.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokerClient, IPC_BASE_URL } from '../../src/client/index.js';
import { loadConfig } from '../../src/platform/config.js';
import { closeDeps, createDeps, sqliteDeps, type SqliteDeps } from '../../src/app/deps.js';
import { createLogger } from '../../src/platform/log.js';
import { requestFile, type IpcRequestFile, type IpcResponseFile } from '../../src/protocol/ipc.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { serveFixture as serve } from '../calls/served.js';
import { until } from './helpers.js';

describe('a broker killed between claiming a request file and answering it', () => {
  const dataDir = tempDir('broker-ipc-crash-');
  const root = tempDir('broker-ipc-root-');
  const env = { BROKER_DATA_DIR: dataDir, BROKER_IPC_DIR: root, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_HOST: '127.0.0.1', BROKER_PORT: '0', BROKER_LOG_LEVEL: 'info' };
  let deps: SqliteDeps | undefined;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (deps) await closeDeps(deps);
  });

  /** The request file the client of `group` writes for a call (signed now). */
  async function callFile(group: string, body: unknown, key: string): Promise<IpcRequestFile> {
    const k = deps!.keys.current(group);
    let file: IpcRequestFile | undefined;
    const capture = new BrokerClient({
      baseUrl: IPC_BASE_URL,
      credential: { keyid: k.keyid, secret: k.secret },
      fetch: async (url, init) => {
        const headers: Record<string, string> = {};
        new Headers(init.headers).forEach((v, n) => (headers[n] = v));
        file = requestFile(init.method!, new URL(url), headers, init.body as string);
        return new Response('{}');
      },
    });
    await capture.post('/v1/ext/calls', body, { idempotencyKey: key });
    return file!;
  }

  it('writes the answer after the restart: the replay of unknown_outcome, the call run once', async () => {
    const first = await serve(env);
    children.push(first.child);
    expect(first.output()).toMatch(/"msg":"file transport watching"/);
    deps = sqliteDeps(await createDeps(loadConfig({ ...env }), { logger: createLogger('silent') }));
    const main = deps.keys.current('main');
    const g = await new BrokerClient({ baseUrl: first.url, credential: { keyid: main.keyid, secret: main.secret } }).post('/v1/grants', { group: 'developer', provider: 'test', level: 1, reason: 'IPC crash test' });
    expect(g.status, JSON.stringify(g.body)).toBe(201);

    const key = 'ipc-crash-1';
    const dir = path.join(root, 'developer');
    const file = await callFile('developer', { action: 'test.read', params: { wait: true } }, key);
    fs.writeFileSync(path.join(dir, 'requests', '.lost.json.tmp'), JSON.stringify(file));
    fs.renameSync(path.join(dir, 'requests', '.lost.json.tmp'), path.join(dir, 'requests', 'lost.json'));
    await first.attempted(key);
    expect(fs.readdirSync(path.join(dir, 'processing'))).toEqual(['lost.json']); // claimed
    first.child.kill('SIGKILL');
    await first.exited;
    expect(fs.readdirSync(path.join(dir, 'responses'))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'processing'))).toEqual(['lost.json']);

    const second = await serve(env);
    children.push(second.child);
    const answerFile = path.join(dir, 'responses', 'lost.json');
    await until(answerFile);
    const answer = JSON.parse(fs.readFileSync(answerFile, 'utf8')) as IpcResponseFile;
    expect(answer.status).toBe(502);
    expect(answer.headers['idempotent-replayed']).toBe('true');
    expect(answer.body).toMatchObject({ code: 'unknown_outcome', call_status: 'unknown_outcome', request_id: key, action: 'test.read' });
    // The claimed file leaves processing/ just after the answer is written (the directory is
    // synced in between), so wait for it rather than look at once.
    while (fs.readdirSync(path.join(dir, 'processing')).length > 0) await new Promise((r) => setTimeout(r, 10));
    expect([...first.attempts, ...second.attempts].filter((id) => id === key)).toHaveLength(1);
    const audit = deps.db.sqlite.prepare('SELECT actor, kind FROM gov_activities WHERE subject = ? ORDER BY seq').all(`call:developer:${key}`);
    expect(audit).toEqual([
      { actor: 'developer', kind: 'call.claimed' },
      { actor: 'system', kind: 'call.unknown_outcome' },
    ]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
