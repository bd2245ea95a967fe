/**
 * What every Cloud Logs action shares: the host's settings and clients, the project check, and the
 * parameter schemas for a project and a caller filter.
 */
import { z } from 'zod';
import { ApiError } from '../../platform/http/problem.js';
import type { LoggingClients } from './client.js';
import { PROJECT_ID_RE, type CloudLogsSettings } from './config.js';
import { filterProblem, MAX_FILTER_CHARS } from './filter.js';

/** The provider's running state; null settings mean the provider is unavailable. */
export interface CloudLogsRuntime {
  settings: CloudLogsSettings | null;
  clients: LoggingClients | null;
  /** Why the provider cannot run, or null. */
  reason: string | null;
}

/** Deadline of one unary RPC, in ms. */
export const RPC_TIMEOUT_MS = 30_000;

/** A GCP project id param. */
export const projectParam = z.string().regex(PROJECT_ID_RE, 'must be a GCP project id');

/** A caller filter param: Logging query language that {@link filterProblem} accepts; blank = all. */
export const filterParam = z
  .string()
  .max(MAX_FILTER_CHARS)
  .default('')
  .superRefine((f, ctx) => {
    const problem = filterProblem(f);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The settings and clients for a call on `project`, checked before any request is sent.
 * @throws ApiError 503 `provider_unavailable` when the host has no usable credentials;
 *   403 `resource_out_of_scope` when `project` is not in `CLOUDLOGS_PROJECT_IDS`.
 */
export function scopedRuntime(rt: CloudLogsRuntime, project: string): { settings: CloudLogsSettings; clients: LoggingClients } {
  if (!rt.settings || !rt.clients) {
    throw new ApiError('provider_unavailable', `The cloudlogs provider is unavailable: ${rt.reason ?? 'not configured'}.`);
  }
  if (!rt.settings.projectIds.has(project)) {
    throw new ApiError('resource_out_of_scope', `This host may not read project "${project}" (not in CLOUDLOGS_PROJECT_IDS).`, {
      resource: project,
    });
  }
  return { settings: rt.settings, clients: rt.clients };
}

/** A filter shortened for audit summaries (at most 200 characters). */
export function shortFilter(filter: string): string {
  const f = filter.trim();
  return f.length > 200 ? `${f.slice(0, 197)}...` : f;
}
