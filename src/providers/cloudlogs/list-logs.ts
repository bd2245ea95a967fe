/** `cloudlogs.list_logs`: the log names in a project, a page at a time. */
import { z } from 'zod';
import { redact } from '../../platform/audit/redact.js';
import { defineAction, untilAborted } from '../contract.js';
import { mapClientError } from './client.js';
import { decodeCursor, encodeCursor, queryFingerprint, takePage } from './cursor.js';
import { ResultBudget } from './entries.js';
import { projectParam, scopedRuntime, RPC_TIMEOUT_MS, type CloudLogsRuntime } from './runtime.js';

const params = z.strictObject({
  project: projectParam,
  /** Log names per page, 1–1000. */
  limit: z.int().min(1).max(1000).default(100),
  page_token: z.string().max(12_000).optional(),
});

/** The result of `cloudlogs.list_logs`. */
export interface ListLogsResult {
  project: string;
  /** Full log names, `projects/<project>/logs/<url-encoded log id>`, usable in `logName="…"` filters. */
  logs: string[];
  /** Pass as `page_token` for the next page; null when there are no more. */
  next_page_token: string | null;
}

/** Builds `cloudlogs.list_logs` over the provider's runtime (`logging.getLogs`, gRPC ListLogs). */
export function listLogsAction(rt: CloudLogsRuntime) {
  return defineAction({
    id: 'cloudlogs.list_logs',
    level: 1,
    description: 'List the log names in a GCP project.',
    params,
    resource: (p) => p.project,
    idempotent: true,
    summarize: (p) => `list logs of ${p.project}${p.page_token ? ' (next page)' : ''}`,
    async execute(p, ctx): Promise<ListLogsResult> {
      const { settings, clients } = scopedRuntime(rt, p.project);
      const q = queryFingerprint('list_logs', p.project, p.limit);
      const cursor = decodeCursor(p.page_token, q);
      const client = await clients.forProject(p.project);
      const gaxOptions = await clients.callOptions(client, RPC_TIMEOUT_MS);
      const [, , response] = await untilAborted(ctx.signal, () =>
        client.getLogs({ pageSize: p.limit, ...(cursor.p ? { pageToken: cursor.p } : {}), gaxOptions }),
      ).catch((err: unknown) => {
        throw mapClientError(err);
      });
      const budget = new ResultBudget(settings.maxResultBytes);
      const names = (response?.logNames ?? []).map((n) => redact(String(n)));
      const page = takePage(names, cursor, response?.nextPageToken, (n) => budget.admit(n));
      return { project: p.project, logs: page.taken, next_page_token: page.next ? encodeCursor(page.next, q) : null };
    },
  });
}
