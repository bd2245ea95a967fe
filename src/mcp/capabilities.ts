/**
 * The group's capabilities as the MCP server last read them (`GET /v1/ext/capabilities`), kept
 * current by polling, so the typed action tools follow grants as they are created, approved,
 * revoked or expire. Staleness is bounded: a change is seen within one poll interval plus one
 * request (default 3 s; `broker mcp --poll-ms`), and every `tools/list` reads the capabilities
 * first, so a list is current when it is answered.
 *
 * The client is told of a change (`notifications/tools/list_changed`) only once it has listed
 * the tools (it holds nothing stale before), and only when what it was last given differs from
 * what the broker says now. While the broker cannot be reached, the last answer stays (the broker
 * still decides every call).
 */
import type { z } from 'zod';
import type { BrokerClient } from '../client/index.js';
import type { CapabilitySchema } from '../modules/calls/routes/schemas.js';

/**
 * One action as `GET /v1/ext/capabilities` answers it (the route's own response schema), read
 * tolerantly: `params_schema` may be absent from a broker older than the typed tools.
 */
export type CapabilityView = Omit<z.infer<typeof CapabilitySchema>, 'params_schema'> & { params_schema?: Record<string, unknown> };

/** Options of {@link CapabilityWatch}. */
export interface WatchOptions {
  /** Time between two polls, in ms (the bound on staleness, plus one request). */
  intervalMs: number;
  /** Called when the client should list again (a poll saw a change since it last listed). */
  onChange(): void;
  /** A line for the operator (stderr), when reading the capabilities starts or stops failing. */
  onProblem?(line: string): void;
}

/** What a listing depends on: every action id (any may be called) and everything of the allowed ones. */
function fingerprintOf(actions: readonly CapabilityView[]): string {
  return JSON.stringify(
    actions.map((a) => (a.allowed ? [a.action, a.level, a.description, a.idempotent, a.grant_id, a.resources, a.expires_at, a.params_schema ?? null] : [a.action])),
  );
}

/** Polls the capabilities and says when the tool list changed. */
export class CapabilityWatch {
  private actions: readonly CapabilityView[] = [];
  private fingerprint = fingerprintOf([]);
  /** What the client was last given (a list, or a change notice); null until it lists. */
  private served: string | null = null;
  private inflight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly client: BrokerClient,
    private readonly opts: WatchOptions,
  ) {}

  /** Every action as last read (allowed or not), in the broker's order. */
  get current(): readonly CapabilityView[] {
    return this.actions;
  }

  /** Changes each time {@link current} does: a key for caches built from it. */
  get version(): string {
    return this.fingerprint;
  }

  /**
   * Reads the capabilities once (concurrent callers share one request). Never rejects: a failure
   * keeps the last answer and is reported once through `onProblem`.
   */
  refresh(): Promise<void> {
    this.inflight ??= this.read().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Records that the client was just given the current list (a `tools/list` answer). */
  markServed(): void {
    this.served = this.fingerprint;
  }

  /** Starts polling (after the client initialized): a read now, then one every `intervalMs`. */
  start(): void {
    this.stopped = false;
    void this.poll();
  }

  /** Stops polling (the connection closed). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    await this.refresh();
    if (this.stopped) return;
    if (this.served !== null && this.served !== this.fingerprint) {
      this.served = this.fingerprint;
      this.opts.onChange();
    }
    this.timer = setTimeout(() => void this.poll(), this.opts.intervalMs);
    this.timer.unref();
  }

  private async read(): Promise<void> {
    let problem: string | null = null;
    try {
      const res = await this.client.get<{ actions?: CapabilityView[] }>('/v1/ext/capabilities');
      if (res.status === 200 && Array.isArray(res.body?.actions)) {
        this.actions = res.body.actions;
        this.fingerprint = fingerprintOf(this.actions);
      } else {
        const code = (res.body as { code?: unknown } | null)?.code;
        problem = `GET /v1/ext/capabilities answered ${res.status}${typeof code === 'string' ? ` ${code}` : ''}`;
      }
    } catch (err) {
      problem = err instanceof Error ? err.message : String(err);
    }
    if (problem !== null && !this.failing) this.opts.onProblem?.(`broker mcp: cannot read the capabilities (${problem}); the action tools stay as last read`);
    if (problem === null && this.failing) this.opts.onProblem?.('broker mcp: reading the capabilities again');
    this.failing = problem !== null;
  }
}
