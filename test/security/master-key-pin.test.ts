/**
 * The master key's pin, with real `broker` processes: a database remembers the master key its
 * group keys were made under, and a process that opens it with another `master.key` (a replica
 * set up without copying the shared key, a restored data directory) stops at start-up with a
 * message naming the file, writing nothing, instead of serving group secrets no agent holds.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { masterKeyPin, MASTER_KEY_PIN } from '../../src/modules/identity/pin.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

describe('the master key pin', () => {
  const first = tempDir('broker-pin-a-');
  const second = tempDir('broker-pin-b-');
  const dbPath = path.join(first, 'broker.db');
  const env = (dataDir: string) => ({ BROKER_DATA_DIR: dataDir, BROKER_DB_PATH: dbPath, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'warn' });
  afterAll(() => {
    fs.rmSync(first, { recursive: true, force: true });
    fs.rmSync(second, { recursive: true, force: true });
  });
  const meta = () => {
    const db = new Database(dbPath, { readonly: true });
    try {
      return {
        pin: (db.prepare('SELECT value FROM broker_meta WHERE key = ?').get(MASTER_KEY_PIN) as { value: string } | undefined)?.value,
        groupKeys: db.prepare('SELECT count(*) AS n FROM group_keys').get() as { n: number },
        audit: db.prepare('SELECT count(*) AS n FROM gov_activities').get() as { n: number },
      };
    } finally {
      db.close();
    }
  };

  it('is recorded by the first process, and the same key opens the database again', async () => {
    const made = await runCli(['secrets', 'export', '--group', 'developer', '--out', path.join(first, 'developer.ipc_secret')], env(first));
    expect(made.code, made.stderr).toBe(0);
    const key = Buffer.from(fs.readFileSync(path.join(first, 'master.key'), 'utf8').trim(), 'base64');
    expect(meta().pin).toBe(masterKeyPin(key));
    const again = await runCli(['audit', 'head'], env(first));
    expect(again.code, again.stderr).toBe(0);
  });

  it('stops a process whose data directory holds another master.key, naming the file, and writes nothing', async () => {
    const before = meta();
    const refused = await runCli(['audit', 'head'], env(second));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(path.join(second, 'master.key'));
    expect(refused.stderr).toMatch(/not the master key this database's group keys were made under/);
    expect(refused.stderr).toContain('Nothing was changed');
    expect(meta()).toEqual(before);
    // The same for `broker serve`: it never listens.
    const serve = await runCli(['serve'], { ...env(second), BROKER_PORT: '0', BROKER_HOST: '127.0.0.1' });
    expect(serve.code).not.toBe(0);
    expect(serve.stdout + serve.stderr).not.toContain('broker listening');
    expect(meta()).toEqual(before);
  });
});
