/**
 * The change watch of a connection and the key cache on top of it, through real SQLite files and
 * a second connection (as another process would write).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { openDb, type Db } from '../../src/platform/db/open.js';
import { ChangeWatch, IN_TRANSACTION } from '../../src/platform/db/watch.js';
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

describe('ChangeWatch', () => {
  it('moves on a write by its own connection and on a commit by another, and only then', () => {
    const watch = ChangeWatch.of(db);
    expect(watch.method).toBe('wal-index');
    expect(ChangeWatch.of(db)).toBe(watch);
    const first = watch.poll();
    expect(watch.poll()).toBe(first);
    db.sqlite.prepare("INSERT INTO broker_meta (key, value) VALUES ('w', '1')").run();
    const own = watch.poll();
    expect(own).not.toBe(first);
    expect(watch.poll()).toBe(own);
    other.sqlite.prepare("UPDATE broker_meta SET value = '2' WHERE key = 'w'").run();
    const theirs = watch.poll();
    expect(theirs).not.toBe(own);
    expect(watch.poll()).toBe(theirs);
    other.sqlite.prepare('SELECT * FROM broker_meta').all();
    expect(watch.poll()).toBe(theirs);
  });

  it('reports every commit of another connection, across checkpoints that reset the WAL', () => {
    const watch = ChangeWatch.of(db);
    const insert = other.sqlite.prepare('INSERT OR REPLACE INTO broker_meta (key, value) VALUES (?, ?)');
    let last = watch.poll();
    for (let i = 0; i < 60; i++) {
      if (i % 7 === 3) other.sqlite.pragma(i % 2 ? 'wal_checkpoint(TRUNCATE)' : 'wal_checkpoint(RESTART)');
      if (i % 5 === 0) db.sqlite.pragma('wal_checkpoint(PASSIVE)');
      insert.run(`c${i % 4}`, String(i));
      const now = watch.poll();
      expect(now, `commit ${i}`).not.toBe(last);
      last = now;
    }
  });

  it('sees a commit made by another process at the next poll', () => {
    const watch = ChangeWatch.of(db);
    const before = watch.poll();
    inAnotherProcess(db.path, "INSERT INTO broker_meta (key, value) VALUES ('p', ?)", 'x');
    const after = watch.poll();
    expect(after).not.toBe(before);
    expect(watch.poll()).toBe(after);
  });

  it('reads the -shm SQLite uses for a database opened through a symbolic link, not a stale one beside the link', () => {
    const link = path.join(dir, 'link.db');
    fs.symlinkSync(path.join(dir, 'broker.db'), link);
    fs.writeFileSync(`${link}-shm`, Buffer.alloc(32 * 1024, 2));
    const viaLink = openDb({ path: link });
    try {
      const watch = ChangeWatch.of(viaLink);
      expect(watch.method).toBe('wal-index');
      const before = watch.poll();
      other.sqlite.prepare("INSERT INTO broker_meta (key, value) VALUES ('l', '1')").run();
      expect(watch.poll()).not.toBe(before);
    } finally {
      viaLink.sqlite.close();
    }
  });

  it('polls with SQL on a rollback-journal database, even with a stale -shm file beside it', () => {
    const file = path.join(dir, 'journal.db');
    fs.writeFileSync(`${file}-shm`, Buffer.alloc(32 * 1024, 1));
    const a = new Database(file);
    const b = new Database(file);
    try {
      a.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
      const watch = ChangeWatch.of({ sqlite: a, path: file } as Db);
      expect(watch.method).toBe('sql');
      const first = watch.poll();
      expect(watch.poll()).toBe(first);
      b.prepare('INSERT INTO t VALUES (2)').run();
      const theirs = watch.poll();
      expect(theirs).not.toBe(first);
      a.prepare('INSERT INTO t VALUES (3)').run();
      expect(watch.poll()).not.toBe(theirs);
    } finally {
      b.close();
      a.close();
    }
  });

  it('answers IN_TRANSACTION inside a transaction, and reports a change after it rolled back', () => {
    const watch = ChangeWatch.of(db);
    const before = watch.poll();
    expect(() =>
      db.sqlite.transaction(() => {
        expect(watch.poll()).toBe(IN_TRANSACTION);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(watch.poll()).not.toBe(before);
  });

  it('polls once for a whole hold', () => {
    const watch = ChangeWatch.of(db);
    const outside = watch.poll();
    const inside = watch.hold(() => {
      const held = watch.poll();
      other.sqlite.prepare("INSERT INTO broker_meta (key, value) VALUES ('h', '1')").run();
      expect(watch.poll()).toBe(held);
      return held;
    });
    expect(inside).toBe(outside);
    expect(watch.poll()).not.toBe(outside);
  });

  it('reuses the last poll for a hold when the caller polled since its request arrived, unless that poll was inside a transaction', () => {
    const watch = ChangeWatch.of(db);
    other.sqlite.prepare("INSERT INTO broker_meta (key, value) VALUES ('r', '1')").run();
    // No poll yet: the hold polls anyway and sees the change.
    const first = watch.hold(() => watch.poll(), true);
    expect(watch.poll()).toBe(first);
    other.sqlite.prepare("UPDATE broker_meta SET value = '2' WHERE key = 'r'").run();
    const seen = watch.poll(); // step 1 of a request arriving after the commit
    expect(seen).not.toBe(first);
    other.sqlite.prepare("UPDATE broker_meta SET value = '3' WHERE key = 'r'").run(); // concurrent with that request
    expect(watch.hold(() => watch.poll(), true)).toBe(seen);
    expect(watch.hold(() => watch.poll())).not.toBe(seen);

    const settled = watch.poll();
    db.sqlite.transaction(() => expect(watch.poll()).toBe(IN_TRANSACTION))();
    expect(watch.hold(() => watch.poll(), true)).not.toBe(settled);
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
});
