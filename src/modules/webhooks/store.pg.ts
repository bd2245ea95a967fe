/**
 * The webhook deliveries on PostgreSQL (`store.ts` describes them), for several replicas: the
 * fan-out writes in the outbox batch's transaction (which holds the consumer's cursor row), a
 * worker claims due deliveries with `FOR UPDATE SKIP LOCKED` (two replicas never claim the same
 * row), and the `grant.expiring` rows are decided under the audit append lock, so two replicas'
 * checks of the same grant append one row.
 */
import { and, asc, eq, gt, inArray, lte, sql } from 'drizzle-orm';
import { appendActivitiesPg } from '../../platform/audit/trail.pg.js';
import type { Clock } from '../../platform/clock.js';
import { advisoryXactLock, failClosedPg, PG_LOCKS, type PgDb } from '../../platform/db/pg.js';
import { runPlanPg } from '../../platform/db/seam.js';
import { GRANT_EXPIRING_KIND, REFUSAL_KINDS } from './events.js';
import { webhookDeliveries } from './schema.pg.js';
import { countsOf, type DeliveryRow, type WebhookStore } from './store.js';

const d = webhookDeliveries;

/** {@link WebhookStore} over PostgreSQL; rejects with 503 `service_unavailable` when the database cannot be reached. */
export function pgWebhookStore(pg: PgDb, clock: Clock): WebhookStore {
  const read = <T>(fn: () => Promise<T>) => failClosedPg(fn, pg.label);
  const one = async (id: string) => (await pg.orm.select().from(d).where(eq(d.id, id)))[0] ?? null;
  return {
    async enqueue(batch, consumer, rows, upTo) {
      if (batch.engine.engine !== 'postgres') throw new Error('pgWebhookStore.enqueue needs a PostgreSQL outbox batch');
      const { tx } = batch.engine;
      let added = 0;
      if (rows.length > 0) added = (await tx.insert(d).values([...rows]).onConflictDoNothing({ target: [d.endpointId, d.eventId] }).returning({ id: d.id })).length;
      void consumer; // the batch holds this consumer's cursor row; it advances in the same transaction
      await batch.advance(upTo);
      return added;
    },
    countRefusals: (group, fromTs, beforeSeq) =>
      read(async () => {
        const r = await pg.pool.query<{ n: string }>('SELECT count(*) AS n FROM gov_activities WHERE kind = ANY($1) AND actor = $2 AND ts >= $3 AND seq < $4', [REFUSAL_KINDS, group, fromTs, beforeSeq]);
        return Number(r.rows[0]!.n);
      }),
    claimDue: (now, limit, leaseMs) =>
      read(async () => {
        const r = await pg.pool.query<{ id: string }>(
          `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`,
          [now, limit],
        );
        if (r.rows.length === 0) return [];
        return pg.orm.transaction(async (tx) => {
          // Lock the candidates that no other worker holds, re-checking they are still due.
          const locked = await tx
            .select({ id: d.id })
            .from(d)
            .where(and(inArray(d.id, r.rows.map((x) => x.id)), eq(d.status, 'pending'), lte(d.nextAttemptAt, now)))
            .for('update', { skipLocked: true });
          const ids = locked.map((x) => x.id);
          if (ids.length === 0) return [];
          const before = await tx.select().from(d).where(inArray(d.id, ids)).orderBy(asc(d.nextAttemptAt), asc(d.id));
          await tx.update(d).set({ nextAttemptAt: now + leaseMs }).where(inArray(d.id, ids));
          return before;
        });
      }),
    recordAttempt: (id, attemptsBefore, patch) =>
      read(async () => (await pg.orm.update(d).set(patch).where(and(eq(d.id, id), eq(d.attempts, attemptsBefore), eq(d.status, 'pending'))).returning({ id: d.id })).length === 1),
    get: (id) => read(() => one(id)),
    list: (q) =>
      read(async () => {
        const rows: DeliveryRow[] = await pg.orm
          .select()
          .from(d)
          .where(and(q.status ? eq(d.status, q.status) : undefined, q.endpoint ? eq(d.endpointId, q.endpoint) : undefined, q.after ? gt(d.id, q.after) : undefined))
          .orderBy(sql`${d.id} COLLATE "C"`)
          .limit(q.limit + 1);
        return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
      }),
    counts: () => read(async () => countsOf((await pg.pool.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status')).rows)),
    retry: (id, plan) =>
      runPlanPg(
        pg,
        clock,
        {
          read: async (tx) => (await tx.select().from(d).where(eq(d.id, id)).for('update'))[0] ?? null,
          apply: async (tx, patch) => {
            await tx.update(d).set(patch).where(eq(d.id, id));
          },
        },
        plan,
      ),
    recordExpiring: (rows) =>
      read(() =>
        pg.orm.transaction(
          async (tx) => {
            // The audit lock first (no other lock is taken here), so the check below sees every
            // grant.expiring row committed before, and no other replica appends until this commits.
            await tx.execute(advisoryXactLock(PG_LOCKS.auditAppend));
            const fresh = [];
            for (const r of rows) {
              if (r.kind !== GRANT_EXPIRING_KIND) continue;
              const seen = await tx.execute(sql`SELECT 1 FROM gov_activities WHERE kind = ${GRANT_EXPIRING_KIND} AND subject = ${r.subject} LIMIT 1`);
              if (seen.rows.length === 0) fresh.push(r);
            }
            if (fresh.length > 0) await appendActivitiesPg(tx, fresh, clock.now());
            return fresh.map((r) => r.subject);
          },
          { isolationLevel: 'read committed' },
        ),
      ),
  };
}
