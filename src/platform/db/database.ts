/**
 * The open database a process serves from, whichever the engine (`BROKER_DATABASE_URL`): the
 * embedded SQLite file (`open.ts`) or a PostgreSQL pool (`pg.ts`). Code that works on both engines
 * takes this and branches on `engine`; a module's stores hide the engine from its services.
 */
import type { Db } from './open.js';
import type { PgDb } from './pg.js';

/** The SQLite file (`db`) or the PostgreSQL pool (`pg`) a process serves from. */
export type Database = { engine: 'sqlite'; db: Db } | { engine: 'postgres'; pg: PgDb };

/** A printable name of the database: the SQLite file's path, or the PostgreSQL URL without its password. */
export function databaseLabel(database: Database): string {
  return database.engine === 'sqlite' ? database.db.path : database.pg.label;
}
