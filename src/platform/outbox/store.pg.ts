/**
 * The audit outbox on PostgreSQL (`store.ts` describes it): several replicas may run the same
 * consumer, so {@link OutboxStore.batch} is one READ COMMITTED transaction that first locks the
 * consumer's cursor row with `SELECT … FOR UPDATE SKIP LOCKED`: the replica that gets it handles
 * the batch and advances in the same transaction; the others skip (resolve `null`) instead of
 * handling the same rows. Audit appends are serialised until commit (`appendActivitiesPg`), so a
 * reader never sees seq N+1 before seq N: reading "after the cursor" misses nothing.
 */
import { sql } from 'drizzle-orm';
import type { Clock } from '../clock.js';
import { failClosedPg, type PgDb, type PgTx } from '../db/pg.js';
import type { OutboxBatch, OutboxRow, OutboxStore } from './store.js';

type RawRow = Omit<OutboxRow, 'seq'> & { seq: string | number };
const toRow = (r: RawRow): OutboxRow => ({ ...r, seq: Number(r.seq) });

const ROWS_AFTER = 'SELECT seq, ts, actor, kind, subject, detail, prev_hash AS "prevHash", hash FROM gov_activities WHERE seq > $1 ORDER BY seq LIMIT $2';
const ADVANCE = `INSERT INTO outbox_cursors (consumer, seq, updated_at) VALUES ($1, $2, $3)
  ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(outbox_cursors.seq, excluded.seq),
  updated_at = CASE WHEN excluded.seq > outbox_cursors.seq THEN excluded.updated_at ELSE outbox_cursors.updated_at END`;

/** {@link OutboxStore} over PostgreSQL (`pg`), stamping cursor moves with `clock`. Rejects with 503 `service_unavailable` when the database cannot be reached. */
export function pgOutboxStore(pg: PgDb, clock: Clock): OutboxStore {
  const cursorOf = async (consumer: string): Promise<number> => {
    const r = await pg.pool.query<{ seq: string }>('SELECT seq FROM outbox_cursors WHERE consumer = $1', [consumer]);
    return r.rows[0] === undefined ? 0 : Number(r.rows[0].seq);
  };
  const rowsAfterTx = async (tx: PgTx, seq: number, limit: number): Promise<OutboxRow[]> =>
    (await tx.execute<RawRow>(sql`SELECT seq, ts, actor, kind, subject, detail, prev_hash AS "prevHash", hash FROM gov_activities WHERE seq > ${seq} ORDER BY seq LIMIT ${limit}`)).rows.map(toRow);
  return {
    head: () => failClosedPg(async () => Number((await pg.pool.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM gov_activities')).rows[0]?.seq ?? 0), pg.label),
    cursor: (consumer) => failClosedPg(() => cursorOf(consumer), pg.label),
    readAfter: (consumer, limit) => failClosedPg(async () => (await pg.pool.query<RawRow>(ROWS_AFTER, [await cursorOf(consumer), limit])).rows.map(toRow), pg.label),
    advance: (consumer, seq) =>
      failClosedPg(async () => {
        await pg.pool.query(ADVANCE, [consumer, seq, clock.now()]);
      }, pg.label),
    start: (consumer, at) =>
      failClosedPg(async () => {
        const from = at === 'head' ? '(SELECT coalesce(max(seq), 0) FROM gov_activities)' : '$3::bigint';
        await pg.pool.query(`INSERT INTO outbox_cursors (consumer, seq, updated_at) VALUES ($1, ${from}, $2) ON CONFLICT (consumer) DO NOTHING`, at === 'head' ? [consumer, clock.now()] : [consumer, clock.now(), at]);
        return cursorOf(consumer);
      }, pg.label),
    batch: <T>(consumer: string, handler: (b: OutboxBatch) => Promise<T>) =>
      failClosedPg(async () => {
        // The row must exist to be locked; a concurrent insert of it by another replica is a no-op here.
        await pg.pool.query('INSERT INTO outbox_cursors (consumer, seq, updated_at) VALUES ($1, 0, $2) ON CONFLICT (consumer) DO NOTHING', [consumer, clock.now()]);
        return pg.orm.transaction(
          async (tx) => {
            const locked = await tx.execute<{ seq: string }>(sql`SELECT seq FROM outbox_cursors WHERE consumer = ${consumer} FOR UPDATE SKIP LOCKED`);
            if (locked.rows[0] === undefined) return null; // another replica's batch holds it
            let cursor = Number(locked.rows[0].seq);
            const start = cursor;
            return handler({
              cursor: start,
              read: (limit) => rowsAfterTx(tx, cursor, limit),
              advance: async (seq) => {
                if (seq <= cursor) return;
                await tx.execute(sql`UPDATE outbox_cursors SET seq = ${seq}, updated_at = ${clock.now()} WHERE consumer = ${consumer}`);
                cursor = seq;
              },
              engine: { engine: 'postgres', tx },
            });
          },
          { isolationLevel: 'read committed' },
        );
      }, pg.label),
  };
}
