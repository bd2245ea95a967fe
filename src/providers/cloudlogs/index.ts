/**
 * The Cloud Logs provider: three L1 reads on Google Cloud Logging through
 * `@google-cloud/logging` over gRPC, answered with the host's own Google credentials.
 *
 * - `cloudlogs.list_logs`: log names in a project;
 * - `cloudlogs.query_entries`: entries for a filter within a required range of at most 7 days;
 * - `cloudlogs.tail_entries`: live entries over a window of at most 30 s / 500 entries.
 *
 * Each action's resource is the GCP project id; the broker checks it against the grant, and the
 * provider refuses (403 `resource_out_of_scope`, before any request) a project outside
 * `CLOUDLOGS_PROJECT_IDS`. Results are trimmed entries, redacted, capped in size.
 */
import type { Provider } from '../contract.js';
import { LoggingClients } from './client.js';
import { loadSettings } from './config.js';
import { listLogsAction } from './list-logs.js';
import { queryEntriesAction } from './query-entries.js';
import type { CloudLogsRuntime } from './runtime.js';
import { tailEntriesAction } from './tail-entries.js';

export type { ListLogsResult } from './list-logs.js';
export type { QueryEntriesResult } from './query-entries.js';
export type { TailEntriesResult, TailStopReason } from './tail-entries.js';
export type { TrimmedEntry } from './entries.js';

/**
 * Builds the provider from the host's environment (see `loadSettings` in config.ts for the
 * variables). Without usable credentials it still registers its actions, and
 * `unavailableReason()` says why they cannot run (calls answer 503 `provider_unavailable`).
 */
export function cloudLogsProvider(env: Record<string, string | undefined> = process.env): Provider {
  const loaded = loadSettings(env);
  const rt: CloudLogsRuntime = {
    settings: loaded.settings,
    clients: loaded.settings ? new LoggingClients(loaded.settings) : null,
    reason: loaded.reason,
  };
  return {
    name: 'cloudlogs',
    actions: [listLogsAction(rt), queryEntriesAction(rt), tailEntriesAction(rt)],
    unavailableReason: () => rt.reason,
    close: async () => rt.clients?.close(),
  };
}
