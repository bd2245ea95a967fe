/**
 * Audit streaming: a serving process hands every audit row, in seq order, to each sink of
 * `policies/audit-sinks.json` (`config.ts`, `sinks.ts`). Each sink is its own consumer of the
 * audit outbox (cursor `sink:<id>`): a loop takes the consumer's batch (`runOutboxBatch`), reads up
 * to `batch_rows` rows after its cursor, hands them to the sink, and advances the cursor only once
 * the sink acknowledged them (a sink that throws leaves the cursor where it was). So delivery is
 * at-least-once: a crash or a failure between delivery and advance sends those rows again (a
 * receiver de-duplicates by `seq`). A failing sink backs off (doubling from `poll_ms` up to
 * `max_backoff_ms`) and retries from its cursor; it never blocks a call, since calls only write
 * the trail and no call waits for a sink. Each sink's lag (head seq minus its cursor, in rows) is
 * the gauge `broker_audit_sink_lag_rows{sink}`, computed at each scrape.
 */
import os from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../log.js';
import { runOutboxBatch } from '../../outbox/consumer.js';
import type { OutboxStore } from '../../outbox/store.js';
import type { AuditSinksPolicy } from './config.js';
import { fileSink, httpSink, syslogSink, type AuditSink } from './sinks.js';

/** The outbox consumer name of a sink. */
export const sinkConsumer = (id: string): string => `sink:${id}`;

/** What {@link startAuditSinks} runs on. */
export interface AuditStreamDeps {
  /** The audit outbox (`platform/outbox/store.ts`): head, cursors, and each consumer's exclusive batch. */
  outbox: OutboxStore;
  logger: Logger;
  metrics: { registry: Registry };
}

/** The running sinks of a serving process. */
export interface AuditStream {
  /** The sink ids, in the file's order. */
  readonly ids: string[];
  /** Wakes every idle sink to read now rather than at its next poll. */
  wake(): void;
  /** Stops every loop after its batch in flight, then closes the sinks. Idempotent. */
  stop(): Promise<void>;
}

/** Builds the sink a spec describes. */
function makeSink(spec: AuditSinksPolicy['sinks'][number]): AuditSink {
  if (spec.type === 'file') return fileSink(spec);
  if (spec.type === 'syslog') return syslogSink(spec, os.hostname());
  return httpSink(spec);
}

const gauges = new WeakMap<Registry, Map<string, { outbox: OutboxStore }>>();

/** Registers (once per registry) the lag gauge and adds `id` to it. */
function trackLag(registry: Registry, outbox: OutboxStore, id: string): void {
  let sinks = gauges.get(registry);
  if (!sinks) {
    const tracked = new Map<string, { outbox: OutboxStore }>();
    sinks = tracked;
    gauges.set(registry, tracked);
    new Gauge({
      name: 'broker_audit_sink_lag_rows',
      help: 'Audit rows an audit sink has not acknowledged yet (head seq minus the sink cursor)',
      labelNames: ['sink'],
      registers: [registry],
      async collect() {
        for (const [sink, { outbox: o }] of tracked) {
          try {
            const [head, cursor] = await Promise.all([o.head(), o.cursor(sinkConsumer(sink))]);
            this.set({ sink }, Math.max(0, head - cursor));
          } catch {
            // an unreadable database keeps the last value; /ready reports the database
          }
        }
      },
    });
  }
  sinks.set(id, { outbox });
}

/**
 * Starts one loop per sink of `policy` (none when it has none). Loops run on timers of their own;
 * nothing here is awaited by a request.
 * @returns the running stream; call `stop()` before closing the database.
 */
export function startAuditSinks(deps: AuditStreamDeps, policy: AuditSinksPolicy): AuditStream {
  const loops = policy.sinks.map((spec) => {
    trackLag(deps.metrics.registry, deps.outbox, spec.id);
    return runSink(deps, spec, policy.pollMs, policy.maxBackoffMs);
  });
  if (policy.sinks.length > 0) deps.logger.info({ sinks: policy.sinks.map((s) => ({ id: s.id, type: s.type })) }, 'streaming the audit trail');
  let stopping: Promise<void> | null = null;
  return {
    ids: policy.sinks.map((s) => s.id),
    wake: () => loops.forEach((l) => l.wake()),
    stop() {
      stopping ??= Promise.all(loops.map((l) => l.stop())).then(() => undefined);
      return stopping;
    },
  };
}

/**
 * One sink's loop: see the file's docstring. The sink is set up at the loop's first batch, so one
 * that cannot be (a file sink whose directory cannot be made) fails and retries like any other.
 */
function runSink(deps: AuditStreamDeps, spec: AuditSinksPolicy['sinks'][number], pollMs: number, maxBackoffMs: number) {
  const batchRows = spec.batch_rows;
  const consumer = sinkConsumer(spec.id);
  let sink: AuditSink | null = null;
  const stop = new AbortController();
  let wakeUp: (() => void) | null = null;
  let failures = 0;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
      stop.signal.addEventListener('abort', done);
    });
  /** One batch: rows delivered and the cursor advanced; the number of rows (0 when none were waiting). */
  const once = (): Promise<number> => {
    const ready = (sink ??= makeSink(spec));
    return runOutboxBatch({ store: deps.outbox, consumer, batchSize: batchRows, handle: (rows) => ready.deliver(rows, stop.signal) });
  };
  const loop = (async () => {
    while (!stop.signal.aborted) {
      let wait: number;
      try {
        const n = await once();
        if (failures > 0) deps.logger.info({ sink: spec.id, failures }, 'audit sink delivering again');
        failures = 0;
        wait = n >= batchRows ? 0 : pollMs;
      } catch (err) {
        if (stop.signal.aborted) break;
        failures += 1;
        wait = Math.min(maxBackoffMs, pollMs * 2 ** Math.min(failures, 20));
        deps.logger.warn({ sink: spec.id, failures, retry_in_ms: wait, err: err instanceof Error ? err.message : String(err) }, 'audit sink failed; retrying from its cursor');
      }
      if (wait > 0) await pause(wait);
    }
  })();
  return {
    wake: () => {
      if (failures === 0) wakeUp?.();
    },
    async stop() {
      stop.abort();
      await loop;
      await sink?.close();
    },
  };
}
