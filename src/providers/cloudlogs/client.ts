/**
 * The Google Cloud Logging clients (`@google-cloud/logging`, gRPC transport) the Cloud Logs actions
 * run on, the host credentials they carry (an ADC file, or the metadata server), and how their
 * failures are reported.
 */
import type { Logging, LoggingOptions } from '@google-cloud/logging';
import type { Compute, ComputeOptions, GoogleAuth } from 'google-auth-library';
import { redactString, registerSecret } from '../../platform/audit/redact.js';
import { ProviderError, untilAborted } from '../contract.js';
import { ApiError } from '../../platform/http/problem.js';
import { LOGGING_READ_SCOPE, type CloudLogsSettings, type CredentialsSource } from './config.js';

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
 * `@google-cloud/logging` and `@grpc/grpc-js`, imported on first use: they take over a second to
 * load, which every CLI verb and every start-up would otherwise pay.
 */
let libraries: Promise<{ Logging: typeof Logging; grpc: typeof import('@grpc/grpc-js') }> | null = null;
const loadLibraries = () =>
  (libraries ??= Promise.all([import('@google-cloud/logging'), import('@grpc/grpc-js')]).then(([logging, grpc]) => ({ Logging: logging.Logging, grpc })));

/** The metadata-server credentials of the settings. */
type MetadataServerSource = Extract<CredentialsSource, { kind: 'metadata-server' }>;

/**
 * A `GoogleAuth` (google-auth-library) whose only client is `Compute`: access tokens of the
 * metadata server's service account `source.serviceAccount` (`default` or an email, the `Compute`
 * option `serviceAccountEmail`), scoped to {@link LOGGING_READ_SCOPE} only (the option `scopes`,
 * sent as the token request's `scopes` query parameter), fetched on first use and cached until
 * shortly before they expire (`GCE_METADATA_HOST` says where the server is). Every token it
 * fetches is registered for redaction. Never reads `GOOGLE_APPLICATION_CREDENTIALS` or any file,
 * and sends nothing until a token is asked for.
 *
 * Each token fetch fails after `source.timeoutMs` with "the metadata server gave no token within
 * … ms" ({@link boundedCompute}).
 */
async function metadataServerAuth(source: MetadataServerSource): Promise<GoogleAuth> {
  const { Compute, GoogleAuth } = await import('google-auth-library');
  const compute = boundedCompute(Compute, source.timeoutMs, { serviceAccountEmail: source.serviceAccount, scopes: [LOGGING_READ_SCOPE] });
  compute.on('tokens', (tokens) => registerSecret(tokens.access_token));
  return new GoogleAuth({ authClient: compute });
}

/**
 * A `Compute` whose token fetch (`refreshTokenNoCache`, which every path to a token goes through:
 * `getRequestHeaders`, `getAccessToken`, and gax's own calls inside the channel) rejects once
 * `timeoutMs` have passed without an answer (`AbortSignal.timeout`), so a metadata server that
 * accepts the connection and never answers, or an address that drops packets, fails the call
 * within that bound.
 *
 * Why a race and not a library option: `Compute` fetches through gcp-metadata's `instance()`,
 * which accepts only `property`, `params` and `headers` (it throws on any other option) and sets
 * gaxios' `timeout` itself: 3 s where it finds it is not on Google Cloud, and none at all where it
 * finds it is (GCE BIOS, Cloud Run, Cloud Functions), with up to 3 retries of a request that got
 * no response. `Compute` takes no signal and does not use its `transporter` for the token. So the
 * fetch is raced; the request left behind is not cancelled (nothing reaches it) and ends on
 * gcp-metadata's own terms (on Google Cloud: when the server answers or the connection drops): its
 * result is dropped, though a token it still brings is registered for redaction like any other.
 * The next call starts a new fetch.
 */
function boundedCompute(Base: typeof Compute, timeoutMs: number, options: ComputeOptions): Compute {
  class BoundedCompute extends Base {
    protected override async refreshTokenNoCache() {
      const deadline = AbortSignal.timeout(timeoutMs);
      try {
        return await untilAborted(deadline, () => super.refreshTokenNoCache());
      } catch (err) {
        if (deadline.aborted && err === deadline.reason) throw new Error(`the metadata server gave no token within ${timeoutMs} ms`);
        throw err;
      }
    }
  }
  return new BoundedCompute(options);
}

/** The `Logging` options that carry the host's credentials. */
type CredentialOptions = Pick<LoggingOptions, 'keyFilename' | 'auth'>;

/**
 * One `Logging` client per project, created on first use. One per project because the client
 * pins `ListLogs` and `TailLogEntries` to its own `projectId`; passing it also avoids the client's
 * slow project-id discovery. All use gRPC (the REST fallback cannot stream). With the metadata
 * server, all share one `GoogleAuth`, hence one cached token.
 */
export class LoggingClients {
  private readonly clients = new Map<string, Logging>();
  private metadataAuth: Promise<GoogleAuth> | null = null;

  constructor(private readonly settings: CloudLogsSettings) {}

  /** The client for `projectId` (which the caller has already checked is allowed). */
  async forProject(projectId: string): Promise<Logging> {
    const { Logging, grpc } = await loadLibraries();
    const credentials = await this.credentialOptions();
    let client = this.clients.get(projectId);
    if (!client) {
      const ep = this.settings.endpoint;
      client = new Logging({
        projectId,
        ...credentials,
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
   * The file for the client to read (`keyFilename`), or the shared metadata-server `GoogleAuth`
   * (`auth`: google-gax takes it instead of building its own, so `GOOGLE_APPLICATION_CREDENTIALS`
   * is never looked at). Its declared type is the older google-gax's; the gax that
   * `@google-cloud/logging-api`'s clients run on only calls `GoogleAuth` methods on it.
   */
  private async credentialOptions(): Promise<CredentialOptions> {
    const source = this.settings.credentials;
    if (source.kind === 'file') return { keyFilename: source.file };
    const auth = await (this.metadataAuth ??= metadataServerAuth(source));
    return { auth: auth as unknown as LoggingOptions['auth'] };
  }

  /**
   * Call options for one RPC with a deadline of `timeoutMs`. On a TLS endpoint the client attaches
   * the host's credentials itself. A plaintext (loopback) channel cannot carry gRPC call
   * credentials, so there the host's `authorization` header is attached as call metadata. With the
   * metadata server the token is taken first on every endpoint (from its cache when still fresh),
   * so that a server that cannot give one, or gives none within `CLOUDLOGS_METADATA_TIMEOUT_MS`,
   * fails the call here rather than inside the channel.
   * @throws ProviderError when the credentials cannot produce a token.
   */
  async callOptions(client: Logging, timeoutMs: number): Promise<CallOptions> {
    const headers: Record<string, string> = {};
    const plaintext = this.settings.endpoint?.plaintext ?? false;
    if (plaintext || this.settings.credentials.kind === 'metadata-server') {
      const authorization = await authorizationOf(client);
      if (plaintext && authorization) headers['authorization'] = authorization;
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
 * The `authorization` header value (`Bearer <token>`) of the client's credentials, or null when
 * they give none.
 * @throws ProviderError (no status: retried as transient) when they cannot produce a token; its
 *   message is redacted.
 */
async function authorizationOf(client: Logging): Promise<string | null> {
  try {
    const auth = (client as unknown as { loggingService: { auth: { getRequestHeaders(): Promise<unknown> } } }).loggingService.auth;
    const got = await auth.getRequestHeaders();
    return got instanceof Headers ? got.get('authorization') : ((got as Record<string, string>)['Authorization'] ?? null);
  } catch (err) {
    throw new ProviderError(`The host's Google credentials could not produce a token: ${redactString((err as Error).message)}`);
  }
}

/**
 * The HTTP status Google maps each gRPC status to (google/rpc/code.proto), so the broker's retry
 * policy (5xx, 408, 429 are transient) applies to gRPC failures as it does to HTTP ones.
 */
const GRPC_STATUS: ReadonlyArray<readonly [name: string, http: number]> = [
  ['OK', 200],
  ['CANCELLED', 499],
  ['UNKNOWN', 500],
  ['INVALID_ARGUMENT', 400],
  ['DEADLINE_EXCEEDED', 504],
  ['NOT_FOUND', 404],
  ['ALREADY_EXISTS', 409],
  ['PERMISSION_DENIED', 403],
  ['RESOURCE_EXHAUSTED', 429],
  ['FAILED_PRECONDITION', 400],
  ['ABORTED', 409],
  ['OUT_OF_RANGE', 400],
  ['UNIMPLEMENTED', 501],
  ['INTERNAL', 500],
  ['UNAVAILABLE', 503],
  ['DATA_LOSS', 500],
  ['UNAUTHENTICATED', 401],
];
const INVALID_ARGUMENT = 3;

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
  const known = typeof e?.code === 'number' && e.code > 0 ? GRPC_STATUS[e.code] : undefined;
  if (!known) return err;
  const [name, http] = known;
  const message = redactString(String(e.details || e.message || name));
  if (e.code === INVALID_ARGUMENT) {
    return new ApiError('validation_failed', `Cloud Logging rejected the request: ${message}`, { provider_code: name });
  }
  return new ProviderError(`Cloud Logging answered ${name}: ${message}`, http, name);
}
