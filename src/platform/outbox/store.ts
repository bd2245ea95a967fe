/**
 * The audit outbox: the audit trail (`gov_activities`) read as a queue. Every audit row is written
 * in the transaction of the change it records (`appendActivities`), so an outbox "written in the
 * same transaction as the audit row" holds by construction, and `seq` is dense and ordered. A
 * consumer keeps only its position in `outbox_cursors`; it reads the rows after it, handles them,
 * and advances. Delivery is at-least-once: a consumer that stops between handling and advancing
 * sees the same rows again, so handlers must be idempotent (key them by `seq`).
 *
 * This file is the interface and the SQLite implementation (one serving process per database
 * file, so a consumer's batches are serialised in process); `store.pg.ts` is the PostgreSQL one
 * (several replicas: a batch holds the consumer's cursor row with `FOR UPDATE SKIP LOCKED`).
 */
import { sql } from 'drizzle-orm';
import { GENESIS_HASH, type StoredActivity } from '../audit/chain.js';
import type { Clock } from '../clock.js';
import { immediate, type Db } from '../db/open.js';
import type { PgTx } from '../db/pg.js';
import { settled } from '../db/seam.js';
import { outboxCursors } from './schema.js';

/**
 * One audit row as the outbox hands it out: `seq`, `ts` (RFC 3339), `actor`, `kind`, `subject`,
 * `detail` (the stored RFC 8785 canonical JSON text, already redacted: parse it, never re-hash a
 * re-serialisation), `prevHash` and `hash` (so a receiver can check the chain).
 */
export type OutboxRow = StoredActivity;

/**
 * One consumer's exclusive batch ({@link OutboxStore.batch}): while the handler runs, no other
 * batch of the same consumer runs (in this process, or on another replica on PostgreSQL).
 */
export interface OutboxBatch {
  /** The consumer's cursor when the batch began (the last handled seq; 0 = none). */
  readonly cursor: number;
  /** The audit rows after the cursor, oldest first, at most `limit`. */
  read(limit: number): Promise<OutboxRow[]>;
  /** Moves the cursor to `seq` (never backwards); on PostgreSQL it commits with the batch. */
  advance(seq: number): Promise<void>;
  /**
   * The engine's transaction the batch runs in, so a consumer can write its own rows atomically
   * with the cursor: `{engine: 'postgres', tx}` (the cursor row is locked in it and `advance`
   * writes in it), or `{engine: 'sqlite', db}` (no transaction is held across the handler: the
   * consumer writes its rows and calls {@link advanceCursorSqlite} inside one `immediate()`).
   */
  readonly engine: { engine: 'sqlite'; db: Db } | { engine: 'postgres'; tx: PgTx };
}

/** The outbox of one database. Every method rejects with the engine's error when the database fails. */
export interface OutboxStore {
  /** The newest audit `seq` (0 when the trail is empty). */
  head(): Promise<number>;
  /** `consumer`'s cursor: the last seq it handled (0 when it never advanced). */
  cursor(consumer: string): Promise<number>;
  /** The audit rows after `consumer`'s cursor, oldest first, at most `limit` (not exclusive: see {@link batch}). */
  readAfter(consumer: string, limit: number): Promise<OutboxRow[]>;
  /**
   * Creates `consumer`'s cursor at `at` (`'head'`: the newest seq now) when it has none, so a
   * consumer added to a broker with a long trail starts from now (or from `0`: the whole trail).
   * @returns the consumer's cursor afterwards.
   */
  start(consumer: string, at: 'head' | number): Promise<number>;
  /** Moves `consumer`'s cursor to `seq` when that is ahead of it (monotonic; creates the row). */
  advance(consumer: string, seq: number): Promise<void>;
  /**
   * Runs `handler` as `consumer`'s only batch: resolves to its value, or to `null` without
   * running it when another batch of the consumer holds the cursor (another loop in this process
   * on SQLite; another replica on PostgreSQL). On PostgreSQL the whole batch is one transaction:
   * a handler that throws rolls back its writes and the cursor (the rows come again).
   */
  batch<T>(consumer: string, handler: (b: OutboxBatch) => Promise<T>): Promise<T | null>;
}

/**
 * Moves `consumer`'s cursor to `seq` if ahead, synchronously, on SQLite: for a consumer that
 * writes its own rows and the cursor in one `immediate()` transaction.
 * @param nowMs stamped as `updated_at`, Unix ms.
 */
export function advanceCursorSqlite(db: Db, consumer: string, seq: number, nowMs: number): void {
  db.orm
    .insert(outboxCursors)
    .values({ consumer, seq, updatedAt: nowMs })
    .onConflictDoUpdate({
      target: outboxCursors.consumer,
      set: { seq: sql`max(${outboxCursors.seq}, excluded.seq)`, updatedAt: sql`CASE WHEN excluded.seq > ${outboxCursors.seq} THEN excluded.updated_at ELSE ${outboxCursors.updatedAt} END` },
    })
    .run();
}

/** The hash a chain starts from, for a consumer checking continuity from seq 1. */
export const OUTBOX_GENESIS_HASH = GENESIS_HASH;

/** {@link OutboxStore} over SQLite (`db`), stamping cursor moves with `clock`. */
export function sqliteOutboxStore(db: Db, clock: Clock): OutboxStore {
  const busy = new Set<string>();
  const cursorOf = (consumer: string): number =>
    (db.sqlite.prepare('SELECT seq FROM outbox_cursors WHERE consumer = ?').get(consumer) as { seq: number } | undefined)?.seq ?? 0;
  const rowsAfter = (seq: number, limit: number): OutboxRow[] =>
    db.sqlite
      .prepare('SELECT seq, ts, actor, kind, subject, detail, prev_hash AS prevHash, hash FROM gov_activities WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(seq, limit) as OutboxRow[];
  const advance = (consumer: string, seq: number) => settled(() => immediate(db, () => advanceCursorSqlite(db, consumer, seq, clock.now())));
  return {
    head: () => settled(() => (db.sqlite.prepare('SELECT max(seq) AS seq FROM gov_activities').get() as { seq: number | null }).seq ?? 0),
    cursor: (consumer) => settled(() => cursorOf(consumer)),
    readAfter: (consumer, limit) => settled(() => rowsAfter(cursorOf(consumer), limit)),
    advance,
    start: (consumer, at) =>
      settled(() =>
        immediate(db, () => {
          const seq = at === 'head' ? ((db.sqlite.prepare('SELECT max(seq) AS seq FROM gov_activities').get() as { seq: number | null }).seq ?? 0) : at;
          db.orm.insert(outboxCursors).values({ consumer, seq, updatedAt: clock.now() }).onConflictDoNothing().run();
          return cursorOf(consumer);
        }),
      ),
    async batch(consumer, handler) {
      if (busy.has(consumer)) return null;
      busy.add(consumer);
      try {
        const cursor = cursorOf(consumer);
        return await handler({
          cursor,
          read: (limit) => settled(() => rowsAfter(cursorOf(consumer), limit)),
          advance: (seq) => advance(consumer, seq),
          engine: { engine: 'sqlite', db },
        });
      } finally {
        busy.delete(consumer);
      }
    },
  };
}
