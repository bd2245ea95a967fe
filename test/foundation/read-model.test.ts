/**
 * The decision path's read model: change sequences and the group keys kept in memory on top of
 * them, through real SQLite files, a second connection and a second process (as the CLI writes).
 * The grant index has its own file (test/grants/source.test.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { openDb, type Db } from '../../src/platform/db/open.js';
import { sqliteChangeSequence } from '../../src/platform/db/change-sequence.js';
import { KeyStore } from '../../src/modules/identity/keys.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';

let dir: string;
let db: Db;
let other: Db;
beforeEach(() => {
  dir = tempDir();
  db = openDb({ path: path.join(dir, 'broker.db') });
  other = openDb({ path: path.join(dir, 'broker.db') });
});
afterEach(() => {
  other.sqlite.close();
  db.sqlite.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `sql` (with `args`) on the database file in a child process, as the CLI would. */
function inAnotherProcess(file: string, sql: string, ...args: unknown[]): void {
  const script = `const D = require('better-sqlite3'); const d = new D(process.argv[1]); d.pragma('busy_timeout = 5000'); d.prepare(process.argv[2]).run(...JSON.parse(process.argv[3])); d.close();`;
  execFileSync(process.execPath, ['-e', script, file, sql, JSON.stringify(args)], { cwd: REPO_ROOT });
}

describe('change sequences', () => {
  const keysHead = () => sqliteChangeSequence(db, 'SELECT version FROM group_keys_version WHERE id = 1');
  const addKey = (on: Db, version: number) => on.sqlite.prepare('INSERT INTO group_keys ("group", version, created_at) VALUES (?, ?, 0)').run('developer', version);

  it('move on a write to the tables they cover, by this connection, another one or another process, and only then', () => {
    const seq = keysHead();
    const first = seq.head();
    expect(seq.head()).toBe(first);
    addKey(db, 1);
    const own = seq.head();
    expect(own).not.toBe(first);
    addKey(other, 2);
    const theirs = seq.head();
    expect(theirs).not.toBe(own);
    inAnotherProcess(db.path, 'UPDATE group_keys SET retires_at = ? WHERE "group" = ?', 5, 'developer');
    const fromProcess = seq.head();
    expect(fromProcess).not.toBe(theirs);
    other.sqlite.prepare("INSERT INTO broker_meta (key, value) VALUES ('w', '1')").run(); // not a covered table
    expect(seq.head()).toBe(fromProcess);
  });

  it('say when the connection is inside a transaction, where the head may still roll back', () => {
    const seq = keysHead();
    const before = seq.head();
    expect(seq.inTransaction()).toBe(false);
    expect(() =>
      db.sqlite.transaction(() => {
        expect(seq.inTransaction()).toBe(true);
        addKey(db, 1);
        expect(seq.head()).not.toBe(before);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(seq.head()).toBe(before);
  });
});

describe('KeyStore lookups from memory', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const master = Buffer.alloc(32, 7);

  it('honour a rotation made on another connection at the very next lookup, and retire the old version at its exact instant', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 600_000);
    await keys.ensureGroups(['developer']);
    expect(keys.lookup('developer:1')).toMatchObject({ group: 'developer', version: 1 });
    expect(keys.lookup('developer:2')).toBeNull();

    const elsewhere = new KeyStore(other, master, new ManualClock(T0 + 1000), 5_000);
    const next = await elsewhere.rotate('developer', 'operator:test');
    expect(keys.lookup('developer:2')).toMatchObject({ keyid: 'developer:2', secret: next.secret });
    expect(keys.lookup('developer:1')).not.toBeNull();
    clock.set(T0 + 1000 + 5_000 - 1);
    expect(keys.lookup('developer:1')).not.toBeNull();
    clock.set(T0 + 1000 + 5_000);
    expect(keys.lookup('developer:1')).toBeNull();
    expect(keys.lookup('developer:2')).not.toBeNull();
  });

  it('see a retirement written directly by another connection, and a rotation with no grace at once', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 600_000);
    await keys.ensureGroups(['developer', 'security']);
    expect(keys.lookup('security:1')).not.toBeNull();
    other.sqlite.prepare('UPDATE group_keys SET retires_at = ? WHERE "group" = ?').run(T0 + 10, 'security');
    expect(keys.lookup('security:1')).not.toBeNull();
    clock.set(T0 + 10);
    expect(keys.lookup('security:1')).toBeNull();

    expect(keys.lookup('developer:1')).not.toBeNull();
    await new KeyStore(other, master, clock, 0).rotate('developer', 'operator:test');
    expect(keys.lookup('developer:1')).toBeNull();
    expect(keys.lookup('developer:2')).not.toBeNull();
  });

  it('honour a retirement written by another process at its exact instant', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 600_000);
    await keys.ensureGroups(['developer']);
    expect(keys.lookup('developer:1')).not.toBeNull();
    inAnotherProcess(db.path, 'UPDATE group_keys SET retires_at = ? WHERE "group" = ?', T0 + 250, 'developer');
    clock.set(T0 + 249);
    expect(keys.lookup('developer:1')).not.toBeNull();
    clock.set(T0 + 250);
    expect(keys.lookup('developer:1')).toBeNull();
  });

  it('refuse malformed and unknown ids, and answer the same inside a transaction', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 600_000);
    await keys.ensureGroups(['developer']);
    for (const id of ['developer', 'developer:0', 'developer:01', 'Developer:1', 'nobody:1', 'developer:1:1']) expect(keys.lookup(id)).toBeNull();
    const outside = keys.lookup('developer:1');
    const inside = db.sqlite.transaction(() => keys.lookup('developer:1'))();
    expect(inside).toEqual(outside);
    expect(db.sqlite.transaction(() => keys.lookup('developer:9'))()).toBeNull();
  });

  it('a rotation rolled back on its own connection leaves no trace in the cache', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 0);
    await keys.ensureGroups(['developer']);
    expect(keys.lookup('developer:1')).not.toBeNull();
    expect(() =>
      db.sqlite.transaction(() => {
        keys.rotate('developer', 'operator:test');
        expect(keys.lookup('developer:2')).not.toBeNull();
        expect(keys.lookup('developer:1')).toBeNull();
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(keys.lookup('developer:2')).toBeNull();
    expect(keys.lookup('developer:1')).not.toBeNull();
  });

  it('a rotation rolled back on its own connection, then one committed elsewhere to the same version, gives the committed one', async () => {
    const clock = new ManualClock(T0);
    const keys = new KeyStore(db, master, clock, 0);
    await keys.ensureGroups(['developer']);
    expect(keys.lookup('developer:1')).not.toBeNull();
    expect(() =>
      db.sqlite.transaction(() => {
        keys.rotate('developer', 'operator:test');
        expect(keys.lookup('developer:2')).not.toBeNull();
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    // The same counter value again, from a rotation that commits (with a grace this time).
    await new KeyStore(other, master, clock, 60_000).rotate('developer', 'operator:test');
    expect(keys.lookup('developer:2')).not.toBeNull();
    expect(keys.lookup('developer:1')).not.toBeNull();
    clock.set(T0 + 60_000);
    expect(keys.lookup('developer:1')).toBeNull();
  });
});
