/**
 * The Google Cloud Logging clients (`@google-cloud/logging`, gRPC transport) the Cloud Logs actions
 * run on, and how their failures are reported.
 */
import { Logging } from '@google-cloud/logging';
import * as grpc from '@grpc/grpc-js';
import { redactString } from '../../src/audit/redact.js';
import { ProviderError } from '../../src/broker/catalog.js';
import { ApiError } from '../../src/http/problem.js';
import type { CloudLogsSettings } from './config.js';

/** The gax call options the actions pass (`gaxOptions`). */
export interface CallOptions {
  /** Deadline of the RPC, in ms. */
  timeout: number;
  /** null: no client-side retries; the broker retries idempotent actions itself. */
  retry: null;
  /** One page per call; paging is the caller's, through page tokens. */
  autoPaginate: false;
  otherArgs: { headers: Record<string, string> };
}

/**
 * One `Logging` client per project, created on first use. One per project because the client
 * pins `ListLogs` and `TailLogEntries` to its own `projectId`; passing it also avoids the client's
 * slow project-id discovery. All use gRPC (the REST fallback cannot stream).
 */
export class LoggingClients {
  private readonly clients = new Map<string, Logging>();

  constructor(private readonly settings: CloudLogsSettings) {}

  /** The client for `projectId` (which the caller has already checked is allowed). */
  forProject(projectId: string): Logging {
    let client = this.clients.get(projectId);
    if (!client) {
      const ep = this.settings.endpoint;
      client = new Logging({
        projectId,
        keyFilename: this.settings.credentialsFile,
        ...(ep
          ? {
              apiEndpoint: ep.host.includes(':') ? `[${ep.host}]` : ep.host,
              port: ep.port,
              ...(ep.plaintext ? { sslCreds: grpc.credentials.createInsecure() } : {}),
            }
          : {}),
      });
      this.clients.set(projectId, client);
    }
    return client;
  }

  /**
   * Call options for one RPC with a deadline of `timeoutMs`. On a TLS endpoint the client attaches
   * the host's credentials itself. A plaintext (loopback) channel cannot carry gRPC call
   * credentials, so there the host's `authorization` header is attached as call metadata.
   * @throws ProviderError when the credentials cannot produce a token.
   */
  async callOptions(client: Logging, timeoutMs: number): Promise<CallOptions> {
    const headers: Record<string, string> = {};
    if (this.settings.endpoint?.plaintext) {
      try {
        const auth = (client as unknown as { loggingService: { auth: { getRequestHeaders(): Promise<unknown> } } }).loggingService.auth;
        const got = await auth.getRequestHeaders();
        const value = got instanceof Headers ? got.get('authorization') : (got as Record<string, string>)['Authorization'];
        if (value) headers['authorization'] = value;
      } catch (err) {
        throw new ProviderError(`The host's Google credentials could not produce a token: ${redactString((err as Error).message)}`);
      }
    }
    return { timeout: timeoutMs, retry: null, autoPaginate: false, otherArgs: { headers } };
  }

  /** Closes every client's gRPC channels. */
  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(
      all.map(async (c) => {
        const services = c as unknown as { loggingService?: { close(): Promise<void> }; configService?: { close(): Promise<void> } };
        await services.loggingService?.close();
        await services.configService?.close();
      }),
    );
  }
}

/**
 * The HTTP status Google maps each gRPC status to (google/rpc/code.proto), so the broker's retry
 * policy (5xx, 408, 429 are transient) applies to gRPC failures as it does to HTTP ones.
 */
const HTTP_STATUS: Record<number, number> = {
  [grpc.status.CANCELLED]: 499,
  [grpc.status.UNKNOWN]: 500,
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.FAILED_PRECONDITION]: 400,
  [grpc.status.ABORTED]: 409,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.UNIMPLEMENTED]: 501,
  [grpc.status.INTERNAL]: 500,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DATA_LOSS]: 500,
  [grpc.status.UNAUTHENTICATED]: 401,
};

/**
 * Maps a client failure to what the broker answers:
 * - gRPC `INVALID_ARGUMENT` (a filter Cloud Logging cannot parse, a stale page token):
 *   ApiError 422 `validation_failed`, since the caller's parameters are at fault;
 * - any other gRPC status: {@link ProviderError} with the HTTP status Google maps it to as
 *   `providerStatus` (503 for `UNAVAILABLE`, 403 for `PERMISSION_DENIED`, …), the gRPC status name
 *   as `providerCode`, and the service's redacted message;
 * - anything else: returned unchanged (the broker answers a generic 502).
 */
export function mapClientError(err: unknown): unknown {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code !== 'number' || HTTP_STATUS[e.code] === undefined) return err;
  const name = grpc.status[e.code]!;
  const message = redactString(String(e.details || e.message || name));
  if (e.code === grpc.status.INVALID_ARGUMENT) {
    return new ApiError('validation_failed', `Cloud Logging rejected the request: ${message}`, { provider_code: name });
  }
  return new ProviderError(`Cloud Logging answered ${name}: ${message}`, HTTP_STATUS[e.code], name);
}

/**
 * Runs `run` unless `signal` is or becomes aborted first; on abort rejects with the signal's reason
 * without waiting (the RPC itself ends at its deadline).
 */
export async function untilAborted<T>(signal: AbortSignal, run: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([run(), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
