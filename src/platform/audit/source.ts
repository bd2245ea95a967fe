/**
 * The audit trail's reads on either engine (`Database`): its head, the recomputation of the whole
 * chain (`verifyChain` / `verifyChainPg`, one `ChainChecker`), the JSON Lines export, and one row's
 * hash. `broker audit verify|head|export`, the checkpoint writer of `serve` and the console read
 * the trail through these, so they work the same on SQLite and on PostgreSQL.
 */
import type { Database } from '../db/database.js';
import type { Db } from '../db/open.js';
import { failClosedPg } from '../db/pg.js';
import { ChainChecker, type ChainPoint, type ChainVerdict } from './chain.js';
import { chainHead, exportLine, exportLines } from './export.js';
import { verifyChainParallel } from './verify-parallel.js';
import { storedActivitiesPg, verifyChainPg } from './trail.pg.js';

/** The newest row's seq, hash and time, or null for an empty trail. @throws (rejects) 503 `service_unavailable` when PostgreSQL cannot be read. */
export async function chainHeadOf(database: Database): Promise<(ChainPoint & { ts: string }) | null> {
  if (database.engine === 'sqlite') return chainHead(database.db);
  const { pg } = database;
  return failClosedPg(async () => {
    const { rows } = await pg.pool.query<{ seq: string; hash: string; ts: string }>('SELECT seq, hash, ts FROM gov_activities ORDER BY seq DESC LIMIT 1');
    const r = rows[0];
    return r ? { seq: Number(r.seq), hash: r.hash, ts: r.ts } : null;
  }, pg.label);
}

/** The stored hash of the row `seq`, or undefined when there is none. @throws (rejects) 503 `service_unavailable` when PostgreSQL cannot be read. */
export async function rowHashOf(database: Database, seq: number): Promise<string | undefined> {
  if (database.engine === 'sqlite') return sqliteRowHash(database.db.sqlite, seq);
  const { pg } = database;
  return failClosedPg(async () => (await pg.pool.query<{ hash: string }>('SELECT hash FROM gov_activities WHERE seq = $1', [seq])).rows[0]?.hash, pg.label);
}

/**
 * Recomputes the whole hash chain from seq 1 over the stored bytes, with `checker` (an anchor,
 * the signed checkpoints; read its head afterwards). On SQLite a large trail is checked over
 * worker threads (`verify-parallel.ts`: each row's hash is independent of the others' checks),
 * with the same verdict as the sequential check.
 * @throws (rejects) the engine's error when the rows cannot be read.
 */
export async function verifyChainOf(database: Database, checker = new ChainChecker()): Promise<ChainVerdict> {
  return database.engine === 'sqlite' ? verifyChainParallel(database.db, checker) : verifyChainPg(database.pg, checker);
}

/**
 * The rows after `since` (exclusive) in seq order as JSON lines (each ending in `\n`), the format
 * `verifyExport` checks; PostgreSQL's rows are read in pages by primary key.
 * @throws (the iteration rejects) the engine's error when the rows cannot be read.
 */
export async function* exportLinesOf(database: Database, since = 0): AsyncGenerator<string> {
  if (database.engine === 'sqlite') {
    yield* exportLines(database.db, since);
    return;
  }
  for await (const r of storedActivitiesPg(database.pg, { afterSeq: since })) yield `${exportLine(r)}\n`;
}

/** The stored hash of the row `seq` in an open SQLite database, read synchronously; undefined when there is none. */
export function sqliteRowHash(sqlite: Db['sqlite'], seq: number): string | undefined {
  return (sqlite.prepare('SELECT hash FROM gov_activities WHERE seq = ?').get(seq) as { hash: string } | undefined)?.hash;
}
