/**
 * The audit outbox on both engines: a consumer reads the audit rows after its cursor (seq, kind,
 * hashes, the stored detail text), advances monotonically, and its batches are exclusive: three
 * replicas' loops of the same consumer, racing while the trail grows, hand every row to exactly
 * one handler exactly once, in order; a failing handler leaves the cursor where it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ManualClock } from '../../../src/platform/clock.js';
import { appendAlone, appendAlonePg } from '../../../src/platform/db/seam.js';
import { runOutboxBatch, startOutboxConsumer, trackOutboxLag } from '../../../src/platform/outbox/consumer.js';
import { sqliteOutboxStore, type OutboxRow, type OutboxStore } from '../../../src/platform/outbox/store.js';
import { pgOutboxStore } from '../../../src/platform/outbox/store.pg.js';
import type { ActivityInput } from '../../../src/platform/audit/trail.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const clock = new ManualClock(Date.UTC(2026, 4, 1, 12));

function storeOf(h: Handle): OutboxStore {
  return h.engine === 'sqlite' ? sqliteOutboxStore(sqliteOf(h), clock) : pgOutboxStore(pgOf(h), clock);
}
function append(h: Handle, rows: ActivityInput[]): Promise<void> {
  return h.engine === 'sqlite' ? appendAlone(sqliteOf(h), clock, rows) : appendAlonePg(pgOf(h), clock, rows);
}
const row = (i: number): ActivityInput => ({ actor: 'system', kind: i % 2 ? 'grant.created' : 'call.denied', subject: `s${i}`, detail: { i, b: 'x', a: 'y' } });

async function until(what: string, check: () => Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(ENGINES.map((e) => [e.name, e] as const))('the audit outbox on %s', (_name, engine: Engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await engine.open('outbox');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('reads the rows after the cursor as stored, and advances only forward', async () => {
    const [a] = t.replicas;
    const store = storeOf(a);
    expect(await store.head()).toBe(0);
    expect(await store.cursor('c1')).toBe(0);
    await append(a, [row(1), row(2), row(3)]);
    expect(await store.head()).toBe(3);
    const rows = await store.readAfter('c1', 2);
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(rows[0]).toMatchObject({ kind: 'grant.created', subject: 's1', actor: 'system', detail: '{"a":"y","b":"x","i":1}' });
    expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
    expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
    await store.advance('c1', 2);
    expect((await store.readAfter('c1', 10)).map((r) => r.seq)).toEqual([3]);
    await store.advance('c1', 1); // never backwards
    expect(await store.cursor('c1')).toBe(2);
    expect(await store.cursor('other')).toBe(0);
    // A new consumer may start from the head (and a second start changes nothing), or from 0.
    expect(await store.start('late', 'head')).toBe(3);
    await append(a, [row(4)]);
    expect(await store.start('late', 'head')).toBe(3);
    expect((await store.readAfter('late', 10)).map((r) => r.seq)).toEqual([4]);
    expect(await store.start('whole', 0)).toBe(0);
  });

  it('keeps the cursor where it was when the handler fails', async () => {
    const [a] = t.replicas;
    const store = storeOf(a);
    const before = await store.cursor('c2');
    await expect(
      runOutboxBatch({ store, consumer: 'c2', batchSize: 10, handle: async () => Promise.reject(new Error('sink down')) }),
    ).rejects.toThrow('sink down');
    expect(await store.cursor('c2')).toBe(before);
    const seen: number[] = [];
    expect(await runOutboxBatch({ store, consumer: 'c2', batchSize: 2, handle: async (rows) => void seen.push(...rows.map((r) => r.seq)) })).toBe(2);
    expect(seen).toEqual([1, 2]);
    expect(await store.cursor('c2')).toBe(2);
    // A handler may stop early: the cursor moves to the seq it returns.
    expect(await runOutboxBatch({ store, consumer: 'c2', batchSize: 10, handle: async (rows) => rows[0]!.seq })).toBe(1);
    expect(await store.cursor('c2')).toBe(3);
  });

  it('hands every row to exactly one of three racing loops, once, in order', async () => {
    // PostgreSQL: three replicas' pools. SQLite: one process serves a database file (the instance
    // lease), so the three loops share its one store.
    const one = storeOf(t.replicas[0]);
    const stores = t.engine === 'postgres' ? t.replicas.map(storeOf) : [one, one, one];
    const seen: number[] = [];
    const handled = new Map<number, number>();
    const loops = stores.map((store, i) =>
      startOutboxConsumer({
        store,
        consumer: 'race',
        batchSize: 7,
        pollMs: 5,
        handle: async (rows: OutboxRow[]) => {
          for (const r of rows) {
            seen.push(r.seq);
            handled.set(r.seq, (handled.get(r.seq) ?? 0) + 1);
          }
          await new Promise((res) => setTimeout(res, 2)); // hold the batch across an await
          void i;
        },
      }),
    );
    for (let i = 0; i < 20; i++) await append(t.replicas[i % 3]!, [row(100 + 2 * i), row(101 + 2 * i)]);
    const head = await stores[0]!.head();
    await until('the consumer to reach the head', async () => (await stores[0]!.cursor('race')) === head);
    await Promise.all(loops.map((l) => l.stop()));
    expect(seen).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
  });

  it('exports the lag of each consumer', async () => {
    const [a] = t.replicas;
    const store = storeOf(a);
    const registry = new Registry();
    trackOutboxLag(registry, store, 'c1');
    trackOutboxLag(registry, store, 'race');
    const head = await store.head();
    const text = await registry.metrics();
    expect(text).toContain(`broker_outbox_lag{consumer="c1"} ${head - 2}`);
    expect(text).toContain('broker_outbox_lag{consumer="race"} 0');
  });
});
