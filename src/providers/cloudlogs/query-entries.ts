/**
 * `cloudlogs.query_entries`: entries matching a Logging query-language filter within a
 * required time range of at most 7 days, a page at a time.
 */
import { z } from 'zod';
import { defineAction, untilAborted } from '../contract.js';
import { mapClientError } from './client.js';
import { decodeCursor, encodeCursor, queryFingerprint, takePage } from './cursor.js';
import { ResultBudget, trimEntry, type TrimmedEntry } from './entries.js';
import { composeFilter } from './filter.js';
import { filterParam, scopedRuntime, projectParam, RPC_TIMEOUT_MS, shortFilter, type CloudLogsRuntime } from './runtime.js';

/** The longest time range a query may cover: 7 days, in ms. */
export const MAX_RANGE_MS = 7 * 24 * 3600 * 1000;

const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

const params = z
  .strictObject({
    project: projectParam,
    /** Logging query language; see filter.ts for what is accepted. Blank matches every entry. */
    filter: filterParam,
    /** Inclusive start of the range, RFC 3339 with `Z` or an offset. */
    start: instant,
    /** Exclusive end of the range, RFC 3339; at most 7 days after `start`. */
    end: instant,
    order: z.enum(['asc', 'desc']).default('desc'),
    /** Entries per page, 1–1000. */
    limit: z.int().min(1).max(1000).default(100),
    page_token: z.string().max(12_000).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.end <= p.start) ctx.addIssue({ code: 'custom', path: ['end'], message: 'end must be after start' });
    else if (p.end - p.start > MAX_RANGE_MS) ctx.addIssue({ code: 'custom', path: ['end'], message: 'the time range is at most 7 days' });
  });

/** The result of `cloudlogs.query_entries`. */
export interface QueryEntriesResult {
  project: string;
  /** The exact filter sent to Cloud Logging: `(<filter>) AND timestamp >= "…" AND timestamp < "…"`. */
  filter: string;
  entries: TrimmedEntry[];
  /** Pass as `page_token` (with the same other parameters) for the next page; null at the end. */
  next_page_token: string | null;
  /** True when the result-size cap cut this page short (the next page starts where it was cut). */
  truncated: boolean;
}

/** Builds `cloudlogs.query_entries` over the provider's runtime (`logging.getEntries`, gRPC ListLogEntries). */
export function queryEntriesAction(rt: CloudLogsRuntime) {
  return defineAction({
    id: 'cloudlogs.query_entries',
    level: 1,
    description: 'Read log entries of a GCP project matching a filter within a time range of at most 7 days.',
    params,
    resource: (p) => p.project,
    idempotent: true,
    summarize: (p) =>
      `query ${p.project} [${new Date(p.start).toISOString()}, ${new Date(p.end).toISOString()}) ${p.order}` +
      `${p.filter.trim() ? ` filter: ${shortFilter(p.filter)}` : ''}${p.page_token ? ' (next page)' : ''}`,
    async execute(p, ctx): Promise<QueryEntriesResult> {
      const { settings, clients } = scopedRuntime(rt, p.project);
      const filter = composeFilter(p.filter, p.start, p.end);
      const q = queryFingerprint('query_entries', p.project, filter, p.order, p.limit);
      const cursor = decodeCursor(p.page_token, q);
      const client = await clients.forProject(p.project);
      const gaxOptions = await clients.callOptions(client, RPC_TIMEOUT_MS);
      const [entries, , response] = await untilAborted(ctx.signal, () =>
        client.getEntries({
          resourceNames: [`projects/${p.project}`],
          filter,
          orderBy: `timestamp ${p.order}`,
          pageSize: p.limit,
          ...(cursor.p ? { pageToken: cursor.p } : {}),
          gaxOptions,
        }),
      ).catch((err: unknown) => {
        throw mapClientError(err);
      });
      const budget = new ResultBudget(settings.maxResultBytes);
      const page = takePage(entries.map((e) => trimEntry(e, ctx.log)), cursor, response?.nextPageToken, (e) => budget.admit(e));
      return {
        project: p.project,
        filter,
        entries: page.taken,
        next_page_token: page.next ? encodeCursor(page.next, q) : null,
        truncated: page.cut,
      };
    },
  });
}
