/**
 * The GitHub walk-through of docs/providers.md, against the real process `npm start` runs (`broker serve` from the `dist/` build)
 * with `GITHUB_API_URL` and `GITHUB_TOKEN` set: the developer group with L1 granted reads a
 * repository; with L2 granted, a write without a DOING task is refused, then allowed with one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../../src/client/index.js';
import { loadConfig } from '../../../src/platform/config.js';
import { closeDeps, createDeps } from '../../../src/app/deps.js';
import { createLogger } from '../../../src/platform/log.js';
import { REPO_ROOT, tempDir } from '../../helpers/harness.js';
import { BIN } from '../../helpers/process.js';
import { allScenarios, FIXTURE_TOKEN, ORG, startGitHubFixtures, type GitHubFixtures, type Scenario } from './fixtures.js';

let fx: GitHubFixtures;
let sc: Scenario;
let child: ChildProcess;
let url: string;
const output: string[] = [];
const clients: Record<string, BrokerClient> = {};

beforeAll(async () => {
  const s = allScenarios();
  fx = await startGitHubFixtures({ walkthrough: [...s['get-repository']!, ...s['comment-issue']!] });
  sc = await fx.load('walkthrough');
  const dataDir = tempDir('broker-serve-');
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GITHUB_') || k.startsWith('BROKER_')) delete env[k];
  Object.assign(env, {
    BROKER_DATA_DIR: dataDir,
    BROKER_PORT: '0',
    BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    GITHUB_TOKEN: FIXTURE_TOKEN,
    GITHUB_API_URL: sc.url,
  });
  child = spawn(process.execPath, [BIN, 'serve'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString('utf8')));
  url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${output.join('')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const parsed = JSON.parse(line) as { msg?: string; url?: string };
      if (parsed.msg === 'broker listening' && parsed.url) resolve(parsed.url);
    });
  });
  // The group keys the process created, read from its data directory (what `broker secrets export` writes out).
  const deps = await createDeps(loadConfig({ BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') }), {
    logger: createLogger('silent'),
  });
  for (const group of ['main', 'developer']) {
    const key = deps.keys.current(group);
    clients[group] = new BrokerClient({ baseUrl: url, credential: { keyid: key.keyid, secret: key.secret } });
  }
  await closeDeps(deps);
}, 90_000);

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await fx.close();
});

describe('npm start with GITHUB_API_URL and GITHUB_TOKEN', () => {
  it('reports GitHub available on /ready', async () => {
    const ready = (await (await fetch(`${url}/ready`)).json()) as { providers: Record<string, unknown> };
    expect(ready.providers['github']).toEqual({ available: true });
  });

  it('walks through L1 read, L2 write refused without a DOING task, then allowed with one', async () => {
    const main = clients['main']!;
    const developer = clients['developer']!;

    // 1. main grants the developer group L1 on the organisation's repositories.
    let r = await main.post('/v1/grants', { group: 'developer', provider: 'github', level: 1, resources: [`${ORG}/*`], reason: 'read the code' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);

    // 2. The developer reads a repository.
    r = await developer.post('/v1/ext/calls', { action: 'github.get_repo', params: { owner: ORG, repo: 'hello-world' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.result).toMatchObject({ full_name: `${ORG}/hello-world`, default_branch: 'master' });

    // 3. With L2 granted, a write without a task is refused.
    r = await main.post('/v1/grants', { group: 'developer', provider: 'github', level: 2, resources: [`${ORG}/*`], ttl_s: 8 * 3600, reason: 'fix issue 1' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const comment = { action: 'github.comment_issue', params: { owner: ORG, repo: 'comment-issue', issue_number: 1, body: 'Reproduced on main; fix in progress.' } };
    r = await developer.post('/v1/ext/calls', comment);
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('task_required');

    // 4. main files a task for the developer, who starts it (DOING); the write is coupled to it.
    r = await main.post('/v1/tasks', { title: 'Fix issue 1', type: 'BUG' });
    const taskId: string = r.body.id;
    r = await main.post(`/v1/tasks/${taskId}/transition`, { to: 'TRIAGED' }, { headers: { 'if-match': r.headers.get('etag')! } });
    r = await main.post(`/v1/tasks/${taskId}/transition`, { to: 'READY', assigned_group: 'developer' }, { headers: { 'if-match': r.headers.get('etag')! } });
    r = await developer.post(`/v1/tasks/${taskId}/transition`, { to: 'DOING' }, { headers: { 'if-match': r.headers.get('etag')! } });
    expect(r.body.state).toBe('DOING');
    r = await developer.post('/v1/ext/calls', { ...comment, task_id: taskId });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.result).toMatchObject({ id: 1000 });

    expect(await sc.pending()).toEqual([]);
    expect(output.join('\n')).not.toContain(FIXTURE_TOKEN);
  });
});
