/**
 * The two engines, as the store tests use them: each test file writes its behaviours once, as a
 * function of a store factory, and runs them on SQLite (a file in a temp directory) and on
 * PostgreSQL (a fresh database on the test server, with a linguistic default collation), so the PostgreSQL stores are held to the
 * SQLite ones. A database is opened as three "replicas": three connections to the same SQLite
 * file, or three pools on the same PostgreSQL database (what three broker processes would hold).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { verifyChain, type ChainVerdict } from '../../../src/platform/audit/chain.js';
import { verifyChainPg } from '../../../src/platform/audit/trail.pg.js';
import { openDb, type Db } from '../../../src/platform/db/open.js';
import { openPgDb, type PgDb } from '../../../src/platform/db/pg.js';
import { tempDir } from '../../helpers/harness.js';
import { testServerUrl } from '../../helpers/postgres.js';

/** One replica's connection: a SQLite handle or a PostgreSQL pool. */
export type Handle = { engine: 'sqlite'; db: Db } | { engine: 'postgres'; db: PgDb };

/** The SQLite handle of `h` (a factory of a SQLite store is only given SQLite handles). */
export function sqliteOf(h: Handle): Db {
  if (h.engine !== 'sqlite') throw new Error('expected a SQLite handle');
  return h.db;
}

/** The PostgreSQL pool of `h`. */
export function pgOf(h: Handle): PgDb {
  if (h.engine !== 'postgres') throw new Error('expected a PostgreSQL handle');
  return h.db;
}

/** One open database, as three replicas, with what the tests check it by. */
export interface TestDatabase {
  engine: Handle['engine'];
  replicas: [Handle, Handle, Handle];
  /** Rows of a query (SQL both engines read alike), on replica 0. */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** How many rows `table` holds. */
  count(table: string): Promise<number>;
  /** Recomputes the whole audit chain from seq 1 (`verifyChain` / `verifyChainPg`). */
  verifyChain(): Promise<ChainVerdict>;
  /** Makes every audit append fail (a trigger raising "disk says no") until the returned function is called. */
  breakAudit(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** An engine the store behaviours run on. */
export interface Engine {
  name: Handle['engine'];
  /** Opens a new, empty, migrated database. */
  open(label: string): Promise<TestDatabase>;
}

export const sqliteEngine: Engine = {
  name: 'sqlite',
  async open() {
    const file = path.join(tempDir(), 'broker.db');
    const dbs = [openDb({ path: file }), openDb({ path: file }), openDb({ path: file })] as const;
    const first = dbs[0];
    const rows = async <T>(sql: string) => first.sqlite.prepare(sql).all() as T[];
    return {
      engine: 'sqlite',
      replicas: [{ engine: 'sqlite', db: dbs[0] }, { engine: 'sqlite', db: dbs[1] }, { engine: 'sqlite', db: dbs[2] }],
      rows,
      count: async (table) => Number((first.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n),
      verifyChain: async () => verifyChain(first),
      breakAudit: async () => {
        first.sqlite.exec("CREATE TRIGGER test_audit_refuses BEFORE INSERT ON gov_activities BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
        return async () => void first.sqlite.exec('DROP TRIGGER test_audit_refuses');
      },
      close: async () => {
        for (const d of dbs) d.sqlite.close();
      },
    };
  },
};

/**
 * Creates an empty database on the test server whose default collation is ICU's English one, as
 * a production database's `en_US.UTF-8` is (the test server's own default, `C.UTF-8`, orders text
 * byte by byte like SQLite and so would hide a store that depends on the collation).
 * @returns its URL.
 */
async function linguisticDatabase(label: string): Promise<string> {
  const admin = testServerUrl();
  const name = `${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

export const postgresEngine: Engine = {
  name: 'postgres',
  async open(label) {
    const url = await linguisticDatabase(label);
    const first = await openPgDb({ url, poolMax: 6 });
    const pools = [first, await openPgDb({ url, poolMax: 6, migrate: false }), await openPgDb({ url, poolMax: 6, migrate: false })] as const;
    // Open every pool's connections now, so the first race of a test is not decided by who connected first.
    await Promise.all(pools.flatMap((p) => Array.from({ length: 6 }, () => p.pool.query('SELECT pg_sleep(0.05)'))));
    const rows = async <T>(sql: string) => (await first.pool.query(sql)).rows as T[];
    return {
      engine: 'postgres',
      replicas: [{ engine: 'postgres', db: pools[0] }, { engine: 'postgres', db: pools[1] }, { engine: 'postgres', db: pools[2] }],
      rows,
      count: async (table) => Number((await first.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n),
      verifyChain: () => verifyChainPg(first),
      breakAudit: async () => {
        await first.pool.query(`CREATE FUNCTION test_audit_refuses() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END; $$`);
        await first.pool.query('CREATE TRIGGER test_audit_refuses BEFORE INSERT ON gov_activities FOR EACH ROW EXECUTE FUNCTION test_audit_refuses()');
        return async () => {
          await first.pool.query('DROP TRIGGER test_audit_refuses ON gov_activities');
          await first.pool.query('DROP FUNCTION test_audit_refuses()');
        };
      },
      close: async () => {
        await Promise.all(pools.map((p) => p.close()));
      },
    };
  },
};

/** Both engines, SQLite first (the reference). */
export const ENGINES: readonly Engine[] = [sqliteEngine, postgresEngine];
