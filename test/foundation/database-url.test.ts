import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/platform/config.js';
import { describeDatabase } from '../../src/platform/db/url.js';

const DATA = '/srv/broker-data';

describe('BROKER_DATABASE_URL', () => {
  it('unset: the embedded SQLite file in the data directory, as before', () => {
    const c = loadConfig({ BROKER_DATA_DIR: DATA });
    expect(c.database).toEqual({ engine: 'sqlite', path: path.join(DATA, 'broker.db') });
    expect(c.dbPath).toBe(path.join(DATA, 'broker.db'));
  });

  it('unset with BROKER_DB_PATH: that file, as before', () => {
    const c = loadConfig({ BROKER_DATA_DIR: DATA, BROKER_DB_PATH: '/var/lib/b.db' });
    expect(c.database).toEqual({ engine: 'sqlite', path: '/var/lib/b.db' });
  });

  it('empty: the default, like unset', () => {
    expect(loadConfig({ BROKER_DATA_DIR: DATA, BROKER_DATABASE_URL: '' }).database.engine).toBe('sqlite');
  });

  it('file:<path> and file:///<path>: SQLite at that path (relative to the working directory), and dbPath follows', () => {
    const rel = loadConfig({ BROKER_DATA_DIR: DATA, BROKER_DATABASE_URL: 'file:./x/broker.db' });
    expect(rel.database).toEqual({ engine: 'sqlite', path: path.resolve('x/broker.db') });
    expect(rel.dbPath).toBe(path.resolve('x/broker.db'));
    const abs = loadConfig({ BROKER_DATA_DIR: DATA, BROKER_DATABASE_URL: 'file:///var/lib/my%20broker.db' });
    expect(abs.database).toEqual({ engine: 'sqlite', path: '/var/lib/my broker.db' });
  });

  it('file: with a conflicting BROKER_DB_PATH is refused, naming both', () => {
    expect(() => loadConfig({ BROKER_DATABASE_URL: 'file:/a.db', BROKER_DB_PATH: '/b.db' })).toThrow(/BROKER_DATABASE_URL.*\/a\.db.*BROKER_DB_PATH.*\/b\.db/);
    expect(loadConfig({ BROKER_DATABASE_URL: 'file:/a.db', BROKER_DB_PATH: '/a.db' }).dbPath).toBe('/a.db');
  });

  it('postgres:// and postgresql://: PostgreSQL, the URL passed through with its TLS options', () => {
    const url = 'postgres://broker:s3cret@db.internal:5432/broker?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem';
    expect(loadConfig({ BROKER_DATABASE_URL: url }).database).toEqual({ engine: 'postgres', url });
    const alt = 'postgresql://broker@db.internal/broker';
    expect(loadConfig({ BROKER_DATABASE_URL: alt }).database).toEqual({ engine: 'postgres', url: alt });
  });

  it.each([
    ['mysql://u:p@h/db', /unsupported scheme "mysql:"/],
    ['not a url', /expected file:<path>/],
    ['file:', /needs a path/],
    ['file:/x.db?mode=ro', /without \?query/],
    ['postgres:///broker', /needs a host/],
  ])('%s is refused with a ConfigError naming the variable', (value, why) => {
    let err: unknown;
    try {
      loadConfig({ BROKER_DATABASE_URL: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/BROKER_DATABASE_URL/);
    expect((err as Error).message).toMatch(why);
  });

  it('describeDatabase never prints the password', () => {
    const text = describeDatabase({ engine: 'postgres', url: 'postgres://broker:s3cret@db:5432/b?sslmode=require&password=other' });
    expect(text).not.toMatch(/s3cret|other/);
    expect(text).toContain('broker:***@db:5432/b');
    expect(text).toContain('sslmode=require');
  });
});
