/**
 * `cloudlogs.tail_entries`: live entries for a filter, collected over a bounded window
 * (at most 30 s and at most 500 entries) through the client's `tailEntries` (gRPC
 * TailLogEntries), then returned at once.
 */
import type { Entry } from '@google-cloud/logging';
import { z } from 'zod';
import { defineAction } from '../contract.js';
import { mapClientError } from './client.js';
import { ResultBudget, trimEntry, type TrimmedEntry } from './entries.js';
import { filterParam, scopedRuntime, projectParam, shortFilter, type CloudLogsRuntime } from './runtime.js';

/** Longest collection window, in ms. */
export const MAX_WINDOW_MS = 30_000;
/** Most entries one tail returns. */
export const MAX_TAIL_ENTRIES = 500;
/** Extra time the gRPC stream's deadline allows past the window, in ms (a backstop; the window timer ends it). */
const STREAM_DEADLINE_GRACE_MS = 5_000;

const params = z.strictObject({
  project: projectParam,
  /** Logging query language; see filter.ts for what is accepted. Blank matches every entry. */
  filter: filterParam,
  /** How long to collect, in ms: 100–30000. */
  window_ms: z.int().min(100).max(MAX_WINDOW_MS).default(10_000),
  /** Stop after this many entries: 1–500. */
  limit: z.int().min(1).max(MAX_TAIL_ENTRIES).default(100),
});

/** Why a tail stopped: its window ended, it reached `limit`, the result-size cap, or the service ended the stream. */
export type TailStopReason = 'window' | 'limit' | 'size' | 'stream_end';

/** The result of `cloudlogs.tail_entries`. */
export interface TailEntriesResult {
  project: string;
  /** The filter sent to Cloud Logging (the caller's, unchanged). */
  filter: string;
  /** In the order received. */
  entries: TrimmedEntry[];
  stop_reason: TailStopReason;
  /** Entries Cloud Logging reported it did not send (rate limits, too many to stream). */
  suppressed: number;
}

/** Builds `cloudlogs.tail_entries` over the provider's runtime. */
export function tailEntriesAction(rt: CloudLogsRuntime) {
  return defineAction({
    id: 'cloudlogs.tail_entries',
    level: 1,
    description: 'Collect live log entries of a GCP project for up to 30 s (at most 500 entries).',
    params,
    resource: (p) => p.project,
    idempotent: true,
    expectedDurationMs: (p) => p.window_ms,
    summarize: (p) => `tail ${p.project} for ${p.window_ms} ms, at most ${p.limit}${p.filter.trim() ? ` filter: ${shortFilter(p.filter)}` : ''}`,
    async execute(p, ctx): Promise<TailEntriesResult> {
      const { settings, clients } = scopedRuntime(rt, p.project);
      const client = await clients.forProject(p.project);
      const gaxOptions = await clients.callOptions(client, p.window_ms + STREAM_DEADLINE_GRACE_MS);
      const filter = p.filter.trim() ? p.filter : undefined;
      ctx.signal.throwIfAborted();
      const stream = client.tailEntries({ ...(filter ? { filter } : {}), gaxOptions });
      const budget = new ResultBudget(settings.maxResultBytes);
      const entries: TrimmedEntry[] = [];
      let suppressed = 0;

      return new Promise<TailEntriesResult>((resolve, reject) => {
        let done = false;
        const settle = (outcome: { stop: TailStopReason } | { error: unknown }) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          (stream as unknown as { abort(): void }).abort();
          stream.destroy();
          if ('error' in outcome) reject(outcome.error);
          else resolve({ project: p.project, filter: p.filter, entries, stop_reason: outcome.stop, suppressed });
        };
        const onAbort = () => settle({ error: ctx.signal.reason });
        const timer = setTimeout(() => settle({ stop: 'window' }), p.window_ms);
        ctx.signal.addEventListener('abort', onAbort, { once: true });

        stream.on('data', (batch: { entries?: Entry[]; suppressionInfo?: Array<{ suppressedCount?: number }> }) => {
          for (const info of batch.suppressionInfo ?? []) suppressed += Number(info.suppressedCount ?? 0);
          for (const raw of batch.entries ?? []) {
            if (done) return;
            const entry = trimEntry(raw, ctx.log);
            if (!budget.admit(entry)) return settle({ stop: 'size' });
            entries.push(entry);
            if (entries.length >= p.limit) return settle({ stop: 'limit' });
          }
        });
        stream.on('error', (err: unknown) => settle({ error: mapClientError(err) }));
        stream.on('end', () => settle({ stop: 'stream_end' }));
      });
    },
  });
}
