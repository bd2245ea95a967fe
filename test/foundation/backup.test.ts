/**
 * `broker backup --out FILE`: a consistent copy of the live database, taken by the real CLI
 * process while a real broker writes to the same SQLite file, checked (integrity, migrations,
 * the audit chain), audited as `backup.created`, never overwriting; and a restore from it (the
 * procedure of docs/operations.md) that a real `broker serve` starts on, with the same group keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/platform/audit/chain.js';
import { openDb } from '../../src/platform/db/open.js';
import { BrokerClient, loadCredential } from '../../src/client/index.js';
import { REPO_ROOT, startBroker, tempDir, type TestBroker } from '../helpers/harness.js';
import { runCli, startServeProcess } from '../helpers/process.js';

interface Report {
  path: string;
  bytes: number;
  audit_rows: number;
  audit_head: { seq: number; hash: string } | null;
}

describe('broker backup', () => {
  let broker: TestBroker;
  let env: Record<string, string>;
  beforeAll(async () => {
    broker = await startBroker();
    env = { BROKER_DATA_DIR: broker.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') };
  });
  afterAll(() => broker.stop());

  const createTask = (n: number) => broker.client('main').post('/v1/tasks', { title: `task ${n}`, type: 'BUG' }, { headers: { 'idempotency-key': `backup-${n}-${Math.random()}` } });

  it('copies the live database while the broker writes, checks the copy and audits backup.created', async () => {
    for (let i = 0; i < 5; i++) expect((await createTask(i)).status).toBe(201);
    const out = path.join(tempDir(), 'broker-backup.db');
    let writing = true;
    const writer = (async () => {
      let n = 100;
      while (writing) expect((await createTask(n++)).status).toBe(201);
      return n - 100;
    })();
    const res = await runCli(['backup', '--out', out], env);
    writing = false;
    expect(await writer).toBeGreaterThan(0);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as Report;
    expect(report.path).toBe(out);
    expect(res.stderr).toContain('master.key');

    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(fs.statSync(out).size).toBe(report.bytes);
    expect(fs.readdirSync(path.dirname(out))).toEqual(['broker-backup.db']); // no temporary file left
    const copy = openDb({ path: out, readonly: true, migrate: false });
    try {
      expect(verifyChain(copy)).toEqual({ ok: true, rows: report.audit_rows });
      const head = copy.sqlite.prepare('SELECT seq, hash FROM gov_activities ORDER BY seq DESC LIMIT 1').get();
      expect(head).toEqual(report.audit_head);
      const titles = (copy.sqlite.prepare('SELECT title FROM tasks').all() as { title: string }[]).map((t) => t.title);
      expect(titles).toEqual(expect.arrayContaining(['task 0', 'task 4']));
    } finally {
      copy.sqlite.close();
    }

    const audited = broker.deps.db.sqlite.prepare("SELECT actor, subject, detail FROM gov_activities WHERE kind = 'backup.created'").all() as { actor: string; subject: string; detail: string }[];
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ actor: expect.stringMatching(/^operator:/), subject: out });
    expect(JSON.parse(audited[0]!.detail)).toEqual(report);
    expect(verifyChain(broker.deps.db).ok).toBe(true);
  });

  it('never overwrites a file, and refuses a missing directory, without a stack trace or a stray file', async () => {
    const dir = tempDir();
    const existing = path.join(dir, 'keep.db');
    fs.writeFileSync(existing, 'precious');
    const again = await runCli(['backup', '--out', existing], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/keep\.db exists; a backup never overwrites a file/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('precious');

    const missing = await runCli(['backup', '--out', path.join(dir, 'no/such/dir/b.db')], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/broker: /);
    expect(`${again.stderr}${missing.stderr}`).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(dir)).toEqual(['keep.db']);
  });

  it('refuses a copy whose audit chain is broken, and keeps nothing', async () => {
    const other = await startBroker();
    try {
      const sqlite = other.deps.db.sqlite;
      const trigger = (sqlite.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'gov_activities_no_update'").get() as { sql: string }).sql;
      sqlite.exec('DROP TRIGGER gov_activities_no_update');
      sqlite.prepare("UPDATE gov_activities SET actor = 'mallory' WHERE seq = 2").run();
      sqlite.exec(trigger);
      const dir = tempDir();
      const res = await runCli(['backup', '--out', path.join(dir, 'b.db')], { BROKER_DATA_DIR: other.dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies') });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/the copy's audit chain is broken at seq 2/);
      expect(fs.readdirSync(dir)).toEqual([]);
      expect(sqlite.prepare("SELECT count(*) AS n FROM gov_activities WHERE kind = 'backup.created'").get()).toEqual({ n: 0 });
    } finally {
      await other.stop();
    }
  });
});

describe('restoring a backup (docs/operations.md procedure)', () => {
  it('a broker started on the copy, with the same master.key, verifies its trail and the groups’ keys', async () => {
    const dataDir = tempDir();
    const cliEnv = { BROKER_DATA_DIR: dataDir };
    const secretDir = tempDir();
    expect((await runCli(['secrets', 'export', '--group', 'developer', '--out', secretDir], cliEnv)).code).toBe(0);
    const out = path.join(tempDir(), 'b.db');
    expect((await runCli(['backup', '--out', out], cliEnv)).code).toBe(0);

    // Disaster: the database is lost. Restore: the broker is stopped; the copy replaces broker.db.
    for (const f of ['broker.db', 'broker.db-wal', 'broker.db-shm']) fs.rmSync(path.join(dataDir, f), { force: true });
    fs.copyFileSync(out, path.join(dataDir, 'broker.db'));
    expect((await runCli(['audit', 'verify'], cliEnv)).stdout).toMatch(/audit chain ok/);
    const serve = await startServeProcess(cliEnv);
    try {
      const client = new BrokerClient({ baseUrl: serve.url, credential: loadCredential(path.join(secretDir, '.ipc_secret')) });
      const who = await client.get('/v1/whoami');
      expect(who.status).toBe(200);
      expect(who.body).toMatchObject({ group: 'developer' });
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    const db = new Database(path.join(dataDir, 'broker.db'), { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) AS n FROM gov_activities WHERE kind = 'backup.created'").get() as { n: number }).n).toBe(0);
    } finally {
      db.close();
    }
  });
});
