/**
 * The real `broker` process: first start on a fresh data directory, configuration errors,
 * `secrets export|rotate`, `audit verify` on a tampered file, and SIGTERM.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient, loadCredential } from '../../src/client/index.js';
import { tempDir } from '../helpers/harness.js';
import { runCli, startServeProcess, type ServeProcess } from '../helpers/process.js';

describe('broker serve on a fresh machine', () => {
  const root = tempDir();
  const dataDir = path.join(root, 'data');
  const env = { BROKER_DATA_DIR: dataDir };
  let serve: ServeProcess;

  beforeAll(async () => {
    serve = await startServeProcess(env);
  });
  afterAll(() => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
  });

  it('creates the data directory, the database and a 0600 master key, and logs where they are', () => {
    expect(fs.existsSync(path.join(dataDir, 'broker.db'))).toBe(true);
    expect(fs.statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    const line = serve.output().split('\n').find((l) => l.includes('broker listening'))!;
    expect(JSON.parse(line)).toMatchObject({ data_dir: dataDir, db: path.join(dataDir, 'broker.db'), master_key: path.join(dataDir, 'master.key') });
  });

  it('exports a group secret (0600) that signs requests the running broker accepts', async () => {
    const out = path.join(root, 'developer');
    const res = await runCli(['secrets', 'export', '--group', 'developer', '--out', out], env);
    expect(res.code).toBe(0);
    const file = path.join(out, '.ipc_secret');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const client = new BrokerClient({ baseUrl: serve.url, credential: loadCredential(file) });
    const who = await client.get('/v1/whoami');
    expect(who.status).toBe(200);
    expect(who.body).toEqual({ group: 'developer', key_version: 1, keyid: 'developer:1' });
  });

  it('rotates a key: the new version verifies at once, the old one during the grace period', async () => {
    const before = loadCredential(path.join(root, 'developer', '.ipc_secret'));
    const rotated = await runCli(['secrets', 'rotate', '--group', 'developer'], env);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ keyid: 'developer:2', previous_verifies_for_s: 600 });
    await runCli(['secrets', 'export', '--group', 'developer', '--out', path.join(root, 'developer')], env);
    const after = loadCredential(path.join(root, 'developer', '.ipc_secret'));
    expect(after.keyid).toBe('developer:2');
    expect((await new BrokerClient({ baseUrl: serve.url, credential: after }).get('/v1/whoami')).body).toMatchObject({ key_version: 2 });
    expect((await new BrokerClient({ baseUrl: serve.url, credential: before }).get('/v1/whoami')).status).toBe(200);
  });

  it('refuses an unknown group', async () => {
    const res = await runCli(['secrets', 'export', '--group', 'nobody', '--out', root], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('unknown group "nobody"');
  });

  it('stops on SIGTERM with exit code 0 after closing the database', async () => {
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    expect(serve.output()).toContain('"msg":"stopped"');
  });
});

describe('configuration', () => {
  it.each([
    ['BROKER_PORT', 'not-a-port'],
    ['BROKER_LOG_LEVEL', 'loud'],
    ['BROKER_CLOCK_SKEW_S', '-5'],
  ])('a bad %s stops the start with a message naming it', async (name, value) => {
    const res = await runCli(['serve'], { BROKER_DATA_DIR: tempDir(), [name]: value });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(name);
  });
});

describe('broker audit verify', () => {
  it('passes on a fresh database and fails at the seq of a row edited with the triggers dropped', async () => {
    const dataDir = tempDir();
    const env = { BROKER_DATA_DIR: dataDir };
    const fresh = await runCli(['audit', 'verify'], env);
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toMatch(/audit chain ok: 4 rows verified/);
    await runCli(['secrets', 'rotate', '--group', 'security'], env);
    expect((await runCli(['audit', 'verify'], env)).stdout).toMatch(/5 rows verified/);

    const db = new Database(path.join(dataDir, 'broker.db'));
    expect(() => db.prepare("UPDATE gov_activities SET actor = 'mallory' WHERE seq = 2").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM gov_activities WHERE seq = 2').run()).toThrow(/append-only/);
    db.exec('DROP TRIGGER gov_activities_no_update');
    db.prepare("UPDATE gov_activities SET detail = json_set(detail, '$.version', 7) WHERE seq = 2").run();
    db.close();

    const broken = await runCli(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('broken at seq 2');
  });
});
