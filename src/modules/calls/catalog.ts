/**
 * The action catalog: providers register actions; the decision path looks them up by id.
 * Seed design: an action is `<provider>.<action>` with a level, a zod params schema, the resource
 * it touches, an idempotency flag, an audit summary and an executor that runs on the host.
 */
import type { z } from 'zod';
import type { Logger } from '../../platform/log.js';

/** Capability levels an action can require: 1 read, 2 write, 3 production. */
export type ActionLevel = 1 | 2 | 3;

/** What an executor gets besides its params. Secrets never come from here: only host config. */
export interface ActionContext {
  /** Aborted when the provider timeout (BROKER_PROVIDER_TIMEOUT_MS) fires or the broker stops. */
  signal: AbortSignal;
  /** The calling group. */
  group: string;
  /** The call's Idempotency-Key. */
  requestId: string;
  /** The coupled task, for L2+ actions. */
  taskId: string | null;
  /** The resource patterns of the grant that allowed the call; null means any resource. */
  grantResources: string[] | null;
  /** Logger bound to the request. */
  log: Logger;
}

/**
 * One action. `P` is the zod schema of its params.
 * `execute` may throw:
 * - `ApiError` (e.g. 412 `precondition_failed`, 403 `resource_out_of_scope`): answered as-is;
 * - {@link ProviderError}: answered 502 `provider_error` with the provider's status and code;
 * - anything else: answered 502 `provider_error` with a generic message.
 */
export interface ActionDefinition<P extends z.ZodType = z.ZodType, R = unknown> {
  /** `<provider>.<action>`, e.g. `github.get_repo`. */
  id: string;
  level: ActionLevel;
  /** One line for `GET /v1/ext/capabilities` and the README. */
  description: string;
  params: P;
  /** The thing the action touches (`owner/repo`, a GCP project id), matched against grant resources. */
  resource(params: z.infer<P>): string;
  /** True when a retry cannot cause a second effect (reads): retried at most twice with backoff. */
  idempotent: boolean;
  /**
   * For actions designed to run for a while (a log tail's window): how long, in ms, for these
   * params. The broker then waits that long plus 5 s instead of `BROKER_PROVIDER_TIMEOUT_MS` when
   * it is longer. Omit for ordinary request/response actions.
   */
  expectedDurationMs?(params: z.infer<P>): number;
  /** A short human summary for the audit trail (no secrets, no large bodies). */
  summarize(params: z.infer<P>): string;
  execute(params: z.infer<P>, ctx: ActionContext): Promise<R>;
}

/** Identity helper that keeps the params type flowing into `resource`, `summarize` and `execute`. */
export function defineAction<P extends z.ZodType, R>(action: ActionDefinition<P, R>): ActionDefinition<P, R> {
  return action;
}

/** A provider: a name, its actions, and whether the host has what it needs to run them. */
export interface Provider {
  /** Lowercase provider id, the prefix of its action ids (`github`, `cloudlogs`). */
  name: string;
  actions: ActionDefinition<any, unknown>[];
  /**
   * Null when the provider can run; otherwise why not (e.g. "GITHUB_TOKEN is not set"). Calls to
   * an unavailable provider answer 503 `provider_unavailable`, and `/ready` lists the reason.
   */
  unavailableReason(): string | null;
  /** Releases clients and sockets at shutdown. */
  close?(): Promise<void>;
}

/**
 * A failure reported by the remote service. Answered as 502 `provider_error` with
 * `provider_status` (the remote HTTP/gRPC status), `provider_code` and redacted `details`.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(
    message: string,
    readonly providerStatus: number | string | null = null,
    readonly providerCode: string | null = null,
    readonly details: unknown = undefined,
  ) {
    super(message);
  }
}

/** The registered actions by id. */
export class Catalog {
  private readonly actions = new Map<string, { action: ActionDefinition<any, unknown>; provider: Provider }>();
  readonly providers: Provider[] = [];

  /**
   * @throws Error when an action id is registered twice or does not start with `<provider>.`.
   */
  constructor(providers: Provider[] = []) {
    for (const p of providers) this.register(p);
  }

  /** Adds a provider and its actions (tests register their own). */
  register(provider: Provider): void {
    for (const action of provider.actions) {
      if (!action.id.startsWith(`${provider.name}.`)) throw new Error(`action ${action.id} must start with "${provider.name}."`);
      if (this.actions.has(action.id)) throw new Error(`action ${action.id} is registered twice`);
      this.actions.set(action.id, { action, provider });
    }
    this.providers.push(provider);
  }

  /** The action and its provider, or undefined for an unknown id. */
  get(id: string): { action: ActionDefinition<any, unknown>; provider: Provider } | undefined {
    return this.actions.get(id);
  }

  /** Every action, in registration order. */
  list(): ActionDefinition<any, unknown>[] {
    return [...this.actions.values()].map((e) => e.action);
  }
}
