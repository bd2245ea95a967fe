/**
 * File modes: a broker started on a fresh data directory creates it 0700 and its database files
 * (`broker.db`, `-wal`, `-shm`) 0600, like the two key files, whatever the umask lets through;
 * database files of an older install that others can read are narrowed to 0600 at the next start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { startServeProcess } from '../helpers/process.js';

const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

describe('file modes of the data directory', () => {
  let umask: number;
  // The usual umask (022) lets group and others read what is created without an explicit mode.
  beforeAll(() => (umask = process.umask(0o022)));
  afterAll(() => void process.umask(umask));

  it('creates the data directory 0700 and the database, -wal and -shm 0600, and narrows older ones', async () => {
    const dataDir = path.join(tempDir('broker-modes-'), 'data');
    const env = { BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'), BROKER_LOG_LEVEL: 'info' };
    const db = path.join(dataDir, 'broker.db');
    const files = ['broker.db', 'broker.db-wal', 'broker.db-shm', 'master.key', 'token.key'];

    const first = await startServeProcess(env);
    try {
      expect(mode(dataDir)).toBe('700');
      expect(Object.fromEntries(files.map((f) => [f, mode(path.join(dataDir, f))]))).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);

    // As an older broker left them: the database files readable by all.
    const older = ['broker.db', 'broker.db-wal', 'broker.db-shm'].map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f));
    expect(older).toContain(db);
    for (const f of older) fs.chmodSync(f, 0o644);
    const second = await startServeProcess(env);
    try {
      for (const f of ['broker.db', 'broker.db-wal', 'broker.db-shm']) expect(mode(path.join(dataDir, f)), f).toBe('600');
    } finally {
      second.child.kill('SIGTERM');
    }
    expect(await second.exited).toBe(0);
  });
});
