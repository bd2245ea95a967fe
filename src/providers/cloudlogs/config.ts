/**
 * The Cloud Logs provider's host configuration. Credentials come from the host only,
 * chosen by `CLOUDLOGS_CREDENTIALS`: an Application Default Credentials file
 * (`GOOGLE_APPLICATION_CREDENTIALS` or else gcloud's, `gcloud auth application-default login`), or
 * a service account attached to the GCE VM, Cloud Run service or GKE workload
 * (`CLOUDLOGS_SERVICE_ACCOUNT`), through the metadata server, with read-only (`logging.read`)
 * tokens fetched within `CLOUDLOGS_METADATA_TIMEOUT_MS`. The projects the host may read are in
 * `CLOUDLOGS_PROJECT_IDS`. Nothing here ever comes from an agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { registerSecret } from '../../platform/audit/redact.js';

/**
 * A GCP project id: 6–30 lowercase letters, digits and hyphens, starting with a letter, optionally
 * prefixed by a legacy domain (`example.com:my-project`).
 */
export const PROJECT_ID_RE = /^(?:[a-z][-a-z0-9.]{0,61}[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$/;

/** Default cap on the size of one action result (the JSON of its entries), in bytes: 256 KiB. */
export const DEFAULT_MAX_RESULT_BYTES = 256 * 1024;

/** Where the Logging API is spoken to. */
export interface Endpoint {
  host: string;
  port: number;
  /**
   * True for loopback hosts (`127.0.0.1`, `::1`, `localhost`): gRPC without TLS, for local fakes and
   * local forwarding proxies. Every other host uses TLS.
   */
  plaintext: boolean;
}

/** The values `CLOUDLOGS_CREDENTIALS` accepts; unset or blank means `file`. */
const CREDENTIALS_SOURCES = ['file', 'metadata-server'] as const;

/**
 * The only OAuth scope asked of the metadata server: the provider only reads logs. Sent as the
 * token request's `scopes` query parameter (google-auth-library's `Compute` option `scopes`).
 */
export const LOGGING_READ_SCOPE = 'https://www.googleapis.com/auth/logging.read';

/** Default `CLOUDLOGS_SERVICE_ACCOUNT`: the metadata server's name for the workload's own account. */
export const DEFAULT_SERVICE_ACCOUNT = 'default';

/** Default bound on one metadata-server token fetch (`CLOUDLOGS_METADATA_TIMEOUT_MS`), in ms: 3 s. */
export const DEFAULT_METADATA_TIMEOUT_MS = 3000;

/** Largest `CLOUDLOGS_METADATA_TIMEOUT_MS` accepted, in ms: 60 s. */
export const MAX_METADATA_TIMEOUT_MS = 60_000;

/**
 * `CLOUDLOGS_SERVICE_ACCOUNT`: `default` or a service account email. It becomes a path segment of
 * the token request (`…/service-accounts/<account>/token`), so anything else (a `/`, `?`, `%`,
 * `..`) is refused.
 */
const serviceAccountSchema = z.union([z.literal(DEFAULT_SERVICE_ACCOUNT), z.email()]);

/** `CLOUDLOGS_METADATA_TIMEOUT_MS`: decimal digits, 1 … {@link MAX_METADATA_TIMEOUT_MS}. */
const metadataTimeoutSchema = z
  .string()
  .regex(/^\d{1,6}$/)
  .transform(Number)
  .pipe(z.number().int().min(1).max(MAX_METADATA_TIMEOUT_MS));

/**
 * Where the provider's Google credentials come from (`CLOUDLOGS_CREDENTIALS`):
 * - `file`: the ADC JSON file at `file` (`GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's:
 *   {@link gcloudAdcFile}), read by the client;
 * - `metadata-server`: access tokens from the metadata server (google-auth-library's `Compute`;
 *   `GCE_METADATA_HOST` says where the server is, default `169.254.169.254`), scoped to
 *   {@link LOGGING_READ_SCOPE} only. No file is read.
 *   - `serviceAccount`: which attached service account's tokens (`CLOUDLOGS_SERVICE_ACCOUNT`):
 *     `default` or an email;
 *   - `timeoutMs`: bound on one token fetch, in ms (`CLOUDLOGS_METADATA_TIMEOUT_MS`, default
 *     3000): a server that does not answer within it fails the call instead of holding it.
 */
export type CredentialsSource =
  | { kind: 'file'; file: string }
  | { kind: 'metadata-server'; serviceAccount: string; timeoutMs: number };

/** What the provider runs on once the host configuration is valid. */
export interface CloudLogsSettings {
  /** The projects the host may read (`CLOUDLOGS_PROJECT_IDS`). */
  projectIds: ReadonlySet<string>;
  /** Where the Google credentials come from (`CLOUDLOGS_CREDENTIALS`). */
  credentials: CredentialsSource;
  /** `CLOUDLOGS_API_ENDPOINT`; null means Google's default (`logging.googleapis.com:443`, TLS). */
  endpoint: Endpoint | null;
  /** Cap on one result's entries, in bytes (`CLOUDLOGS_MAX_RESULT_BYTES`, default 256 KiB). */
  maxResultBytes: number;
}

/** Either settings, or why the provider cannot run (shown by `/ready`, answered as 503). */
export type LoadedSettings = { settings: CloudLogsSettings; reason: null } | { settings: null; reason: string };

/** Fields of an ADC JSON file that are credentials, registered for redaction. */
const SECRET_FIELDS = ['private_key', 'private_key_id', 'client_secret', 'refresh_token'] as const;

/**
 * Reads and checks the provider's variables, and registers the credential material of the ADC file
 * (private key, key id, client secret, refresh token) with the shared redaction so it never reaches
 * a response, a log line or an audit row.
 *
 * - `CLOUDLOGS_PROJECT_IDS`: comma- or space-separated project ids (required).
 * - `CLOUDLOGS_CREDENTIALS`: `file` (default) or `metadata-server` ({@link CredentialsSource}).
 * - `GOOGLE_APPLICATION_CREDENTIALS` (only with `file`): path of a readable ADC JSON file with a
 *   `type`; when unset, gcloud's file ({@link gcloudAdcFile}) if it exists. One of the two is
 *   required. With `metadata-server` neither is looked at, and nothing is sent over the network
 *   here: the first token is fetched by the first call.
 * - `CLOUDLOGS_SERVICE_ACCOUNT` (only with `metadata-server`): `default` (the default, also when
 *   blank) or a service account email.
 * - `CLOUDLOGS_METADATA_TIMEOUT_MS` (only with `metadata-server`): integer ms, 1 … 60000, default
 *   3000.
 * - `CLOUDLOGS_API_ENDPOINT`: `host` or `host:port` (port default 443).
 * - `CLOUDLOGS_MAX_RESULT_BYTES`: 4096 … 16 MiB.
 *
 * Never throws: an invalid or missing variable becomes the `reason`. A reason names the variable
 * but never echoes the value of `CLOUDLOGS_CREDENTIALS`, `CLOUDLOGS_SERVICE_ACCOUNT` or
 * `CLOUDLOGS_METADATA_TIMEOUT_MS` (`/ready`, which shows it, is unauthenticated).
 */
export function loadSettings(env: Record<string, string | undefined>): LoadedSettings {
  const fail = (reason: string): LoadedSettings => ({ settings: null, reason });

  const ids = (env['CLOUDLOGS_PROJECT_IDS'] ?? '').split(/[\s,]+/).filter(Boolean);
  if (ids.length === 0) return fail('CLOUDLOGS_PROJECT_IDS is not set');
  const badId = ids.find((id) => !PROJECT_ID_RE.test(id));
  if (badId !== undefined) return fail(`CLOUDLOGS_PROJECT_IDS holds "${badId}", which is not a GCP project id`);

  const credentials = loadCredentialsSource(env);
  if (typeof credentials === 'string') return fail(credentials);

  let endpoint: Endpoint | null = null;
  if (env['CLOUDLOGS_API_ENDPOINT']) {
    endpoint = parseEndpoint(env['CLOUDLOGS_API_ENDPOINT']);
    if (!endpoint) return fail('CLOUDLOGS_API_ENDPOINT must be "host" or "host:port"');
  }

  let maxResultBytes = DEFAULT_MAX_RESULT_BYTES;
  if (env['CLOUDLOGS_MAX_RESULT_BYTES']) {
    maxResultBytes = Number(env['CLOUDLOGS_MAX_RESULT_BYTES']);
    if (!Number.isInteger(maxResultBytes) || maxResultBytes < 4096 || maxResultBytes > 16 * 1024 * 1024) {
      return fail('CLOUDLOGS_MAX_RESULT_BYTES must be an integer from 4096 to 16777216');
    }
  }

  return { settings: { projectIds: new Set(ids), credentials, endpoint, maxResultBytes }, reason: null };
}

/** The credentials `CLOUDLOGS_CREDENTIALS` selects, or why they cannot be used. */
function loadCredentialsSource(env: Record<string, string | undefined>): CredentialsSource | string {
  const source = env['CLOUDLOGS_CREDENTIALS']?.trim() || 'file';
  if (source === 'metadata-server') return loadMetadataServerSource(env);
  if (source === 'file') return loadCredentialsFile(env);
  // The value itself is not echoed: /ready is unauthenticated, and a misplaced secret must not leak there.
  return `CLOUDLOGS_CREDENTIALS must be ${CREDENTIALS_SOURCES.map((s) => `"${s}"`).join(' or ')}`;
}

/**
 * The metadata-server options (`CLOUDLOGS_SERVICE_ACCOUNT`, `CLOUDLOGS_METADATA_TIMEOUT_MS`), or
 * what is wrong with them. As for `CLOUDLOGS_CREDENTIALS`, the values are never echoed.
 */
function loadMetadataServerSource(env: Record<string, string | undefined>): CredentialsSource | string {
  const account = serviceAccountSchema.safeParse(env['CLOUDLOGS_SERVICE_ACCOUNT']?.trim() || DEFAULT_SERVICE_ACCOUNT);
  if (!account.success) return 'CLOUDLOGS_SERVICE_ACCOUNT must be "default" or a service account email';
  const rawTimeout = env['CLOUDLOGS_METADATA_TIMEOUT_MS']?.trim();
  const timeout = rawTimeout ? metadataTimeoutSchema.safeParse(rawTimeout) : { success: true as const, data: DEFAULT_METADATA_TIMEOUT_MS };
  if (!timeout.success) return `CLOUDLOGS_METADATA_TIMEOUT_MS must be an integer from 1 to ${MAX_METADATA_TIMEOUT_MS} (ms)`;
  return { kind: 'metadata-server', serviceAccount: account.data, timeoutMs: timeout.data };
}

/** The ADC file (`GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's), checked, or what is wrong. */
function loadCredentialsFile(env: Record<string, string | undefined>): CredentialsSource | string {
  const gcloudFile = gcloudAdcFile(env);
  const fromEnv = env['GOOGLE_APPLICATION_CREDENTIALS'];
  const file = fromEnv || (gcloudFile !== null && fs.existsSync(gcloudFile) ? gcloudFile : null);
  if (!file) {
    return `GOOGLE_APPLICATION_CREDENTIALS is not set${gcloudFile ? `, and there is no gcloud credentials file ${gcloudFile}` : ''}`;
  }
  const problem = readCredentials(file);
  if (problem) return `${fromEnv ? 'GOOGLE_APPLICATION_CREDENTIALS' : 'gcloud credentials'}: ${problem}`;
  return { kind: 'file', file };
}

/**
 * gcloud's Application Default Credentials file, written by `gcloud auth application-default
 * login`: `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
 * `$HOME/.config/gcloud/application_default_credentials.json` (where google-auth-library looks on
 * Linux and macOS). Null when neither variable is set. The file may not exist.
 */
export function gcloudAdcFile(env: Record<string, string | undefined>): string | null {
  const dir = env['CLOUDSDK_CONFIG'] || (env['HOME'] ? path.join(env['HOME'], '.config', 'gcloud') : null);
  return dir ? path.join(dir, 'application_default_credentials.json') : null;
}

/** Checks the ADC file and registers its secrets; returns what is wrong with it, or null. */
function readCredentials(file: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `cannot read ${file} (${code})` : `${file} is not JSON`;
  }
  if (typeof json !== 'object' || json === null || typeof (json as { type?: unknown }).type !== 'string') {
    return `${file} is not a credentials file (no "type")`;
  }
  for (const field of SECRET_FIELDS) {
    const value = (json as Record<string, unknown>)[field];
    if (typeof value === 'string') registerSecret(value);
  }
  return null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const ENDPOINT_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/;

/** Parses `host`, `host:port` or `[v6]:port`; null when malformed. */
function parseEndpoint(value: string): Endpoint | null {
  const m = ENDPOINT_RE.exec(value.trim());
  if (!m) return null;
  const host = (m[1] ?? m[2] ?? '').toLowerCase();
  const port = m[3] ? Number(m[3]) : 443;
  if (port < 1 || port > 65535) return null;
  return { host, port, plaintext: LOOPBACK.has(host) };
}
