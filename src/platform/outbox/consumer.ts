/**
 * The loop a serving process runs for one outbox consumer: every `pollMs` (and at once after a
 * full batch) it takes the consumer's exclusive batch (`OutboxStore.batch`), reads up to
 * `batchSize` audit rows after the cursor, hands them to the consumer, and advances the cursor.
 * A failing handler leaves the cursor where it was, so the same rows come again at the next poll
 * (at-least-once; the handler de-duplicates by `seq`). The lag (`head - cursor`) of every consumer
 * is exported as the gauge `broker_outbox_lag{consumer}`.
 */
import { Gauge, type Registry } from 'prom-client';
import type { OutboxBatch, OutboxRow, OutboxStore } from './store.js';

/** What one consumer does with a batch of rows. */
export interface OutboxHandler {
  /**
   * Handles `rows` (oldest first, at least one). Resolves to the last seq handled (the cursor
   * advances to it), or `undefined` for all of them. May advance the cursor itself, atomically
   * with its own writes (`batch.advance` on PostgreSQL, `advanceCursorSqlite` on SQLite); the
   * loop's advance afterwards is then a no-op. Throws to leave the cursor where it was.
   */
  (rows: OutboxRow[], batch: OutboxBatch): Promise<number | void>;
}

/** Options of {@link startOutboxConsumer}. */
export interface OutboxConsumerOptions {
  store: OutboxStore;
  /** The consumer's name, its key in `outbox_cursors`. */
  consumer: string;
  handle: OutboxHandler;
  /** Rows per batch (≥ 1). */
  batchSize: number;
  /** Milliseconds between polls when the last batch was not full. */
  pollMs: number;
  /** Told of a failed batch (the loop goes on). */
  onError?: (err: unknown) => void;
}

/** A running consumer loop. */
export interface OutboxConsumer {
  /** Runs one batch now: resolves to the rows handled (0 when none, or when another batch holds the cursor). Rejects with the handler's error. */
  tick(): Promise<number>;
  /** Polls now instead of at the next interval (e.g. after a write). */
  wake(): void;
  /** Stops polling and resolves once the batch in flight (if any) finished. */
  stop(): Promise<void>;
}

/**
 * Runs one batch of `opts.consumer`: see {@link OutboxConsumer.tick}.
 * @returns the number of rows handled.
 */
export async function runOutboxBatch(opts: Pick<OutboxConsumerOptions, 'store' | 'consumer' | 'handle' | 'batchSize'>): Promise<number> {
  const n = await opts.store.batch(opts.consumer, async (batch) => {
    const rows = await batch.read(opts.batchSize);
    if (rows.length === 0) return 0;
    const upTo = (await opts.handle(rows, batch)) ?? rows[rows.length - 1]!.seq;
    await batch.advance(upTo);
    return rows.filter((r) => r.seq <= upTo).length;
  });
  return n ?? 0;
}

/**
 * Starts the poll loop of one consumer (timers are `unref`ed: they never keep a process alive).
 * @returns the loop; call `stop()` before closing the database.
 */
export function startOutboxConsumer(opts: OutboxConsumerOptions): OutboxConsumer {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<number> | null = null;
  const tick = (): Promise<number> => {
    if (inFlight) return inFlight;
    inFlight = runOutboxBatch(opts).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      tick().then(
        (n) => schedule(n >= opts.batchSize ? 0 : opts.pollMs),
        (err) => {
          opts.onError?.(err);
          schedule(opts.pollMs);
        },
      );
    }, ms);
    timer.unref();
  };
  schedule(0);
  return {
    tick,
    wake: () => {
      if (!inFlight) schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight?.catch(() => undefined);
    },
  };
}

const lagGauges = new WeakMap<Registry, { stores: Map<string, OutboxStore> }>();

/**
 * Exports `consumer`'s lag on `registry` as `broker_outbox_lag{consumer}` (audit rows not yet
 * handled: head seq − cursor), computed from the database at each scrape. The gauge is registered
 * once per registry; every consumer that calls this is added to it.
 */
export function trackOutboxLag(registry: Registry, store: OutboxStore, consumer: string): void {
  let entry = lagGauges.get(registry);
  if (!entry) {
    const e = { stores: new Map<string, OutboxStore>() };
    entry = e;
    lagGauges.set(registry, e);
    new Gauge({
      name: 'broker_outbox_lag',
      help: 'Audit rows an outbox consumer has not handled yet (head seq minus its cursor)',
      labelNames: ['consumer'],
      registers: [registry],
      async collect() {
        for (const [name, s] of e.stores) {
          try {
            const [head, cursor] = await Promise.all([s.head(), s.cursor(name)]);
            this.set({ consumer: name }, Math.max(0, head - cursor));
          } catch {
            // an unreadable database leaves the last value; /ready reports the database
          }
        }
      },
    });
  }
  entry.stores.set(consumer, store);
}
