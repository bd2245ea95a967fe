/**
 * The GitHub side of the provider: host credentials (a token or a GitHub App installation),
 * a per-call Octokit client, and the mapping of GitHub failures to {@link ProviderError}.
 *
 * Retries are the call path's only (idempotent actions at most twice, with backoff; the
 * others never), so the client has no retry or throttling plugin and one attempt sends each
 * request once. A rate-limited answer fails the attempt; its `retry_after_s` tells the agent how
 * long to wait.
 */
import fs from 'node:fs';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { redact, redactString, registerSecret } from '../../platform/audit/redact.js';
import { ProviderError, untilAborted, type ActionContext } from '../contract.js';
import { ApiError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { capResult } from './results.js';

/** GitHub's public API, used when `GITHUB_API_URL` is not set. */
export const DEFAULT_API_URL = 'https://api.github.com';
/** Default cap on one action's result, in bytes of JSON (`GITHUB_RESULT_MAX_BYTES`). */
export const DEFAULT_RESULT_MAX_BYTES = 64 * 1024;
const USER_AGENT = 'nanoclaw-broker';

/** How the host authenticates to GitHub. Never comes from an agent. */
export type GitHubCredential =
  | { type: 'token'; token: string }
  | { type: 'app'; appId: string; privateKey: string; installationId: string };

/** The provider's settings, read from the host environment by {@link githubSettingsFromEnv}. */
export interface GitHubSettings {
  /** API root without a trailing `/`, e.g. `https://api.github.com` or `https://ghe.example/api/v3`. */
  baseUrl: string;
  credential: GitHubCredential | null;
  /** Why the provider cannot run (no or broken credential, bad URL); null when it can. */
  unavailable: string | null;
  /** Cap on one result, in bytes of JSON. */
  maxResultBytes: number;
}

/**
 * Reads `GITHUB_TOKEN`, or (preferred when complete) `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY_PATH`
 * and `GITHUB_APP_INSTALLATION_ID`; `GITHUB_API_URL` (default {@link DEFAULT_API_URL}) and
 * `GITHUB_RESULT_MAX_BYTES` (default 65 536). Registers the token and the private key for
 * redaction. Never throws: problems become `unavailable`.
 */
export function githubSettingsFromEnv(env: Record<string, string | undefined>): GitHubSettings {
  const rawMax = env['GITHUB_RESULT_MAX_BYTES'];
  const maxResultBytes = rawMax && /^\d+$/.test(rawMax) && Number(rawMax) >= 1024 ? Number(rawMax) : DEFAULT_RESULT_MAX_BYTES;
  const base = { maxResultBytes, credential: null };
  const rawUrl = (env['GITHUB_API_URL'] || DEFAULT_API_URL).replace(/\/+$/, '');
  if (!URL.canParse(rawUrl) || !/^https?:$/.test(new URL(rawUrl).protocol)) {
    return { ...base, baseUrl: DEFAULT_API_URL, unavailable: 'GITHUB_API_URL is not an http(s) URL' };
  }
  const baseUrl = rawUrl;
  const appVars = ['GITHUB_APP_ID', 'GITHUB_APP_PRIVATE_KEY_PATH', 'GITHUB_APP_INSTALLATION_ID'] as const;
  const appSet = appVars.filter((v) => env[v]);
  if (appSet.length > 0) {
    if (appSet.length < appVars.length) {
      const missing = appVars.filter((v) => !env[v]);
      return { ...base, baseUrl, unavailable: `GitHub App configuration is incomplete: ${missing.join(', ')} not set` };
    }
    const keyPath = env['GITHUB_APP_PRIVATE_KEY_PATH']!;
    let privateKey: string;
    try {
      privateKey = fs.readFileSync(keyPath, 'utf8');
    } catch (err) {
      return { ...base, baseUrl, unavailable: `GITHUB_APP_PRIVATE_KEY_PATH cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` };
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
      return { ...base, baseUrl, unavailable: 'GITHUB_APP_PRIVATE_KEY_PATH is not a PEM private key' };
    }
    registerSecret(privateKey);
    const credential: GitHubCredential = {
      type: 'app',
      appId: env['GITHUB_APP_ID']!,
      privateKey,
      installationId: env['GITHUB_APP_INSTALLATION_ID']!,
    };
    return { ...base, baseUrl, credential, unavailable: null };
  }
  const token = env['GITHUB_TOKEN'];
  if (!token) {
    return {
      ...base,
      baseUrl,
      unavailable: 'no GitHub credential: set GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH and GITHUB_APP_INSTALLATION_ID',
    };
  }
  registerSecret(token);
  return { ...base, baseUrl, credential: { type: 'token', token }, unavailable: null };
}

/**
 * GitHub App installation permissions an action needs
 * (https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app).
 */
export type GitHubPermissions = Partial<
  Record<'actions' | 'checks' | 'contents' | 'issues' | 'metadata' | 'pull_requests' | 'statuses', 'read' | 'write'>
>;

/**
 * The client of one call, for reads and writes alike. It never retries: retries are the call
 * path's only (idempotent actions at most twice, with backoff), so one attempt sends
 * each request once.
 */
export interface GitHubSession {
  octokit: Octokit;
  owner: string;
  repo: string;
}

/** Holds the host credential and opens per-call sessions. One per provider. */
export class GitHubClient {
  /**
   * The App's auth, made once: its state holds the installation-token cache (`@octokit/auth-app`'s
   * default, a toad-cache LRU of up to 15 000 tokens, each kept 59 minutes) that every call shares.
   * Its own request is never sent: each call asks through an auth made from this state with the
   * call's request (see `token`).
   */
  private readonly appAuth: ReturnType<typeof createAppAuth> | null;

  constructor(readonly settings: GitHubSettings) {
    const cred = settings.credential;
    this.appAuth =
      cred?.type === 'app'
        ? createAppAuth({
            appId: cred.appId,
            privateKey: cred.privateKey,
            installationId: cred.installationId,
            request: new Octokit({ baseUrl: settings.baseUrl, userAgent: USER_AGENT }).request,
          })
        : null;
  }

  /**
   * Runs `fn` with a client for `owner/repo` and returns its result redacted and capped at
   * `maxResultBytes`. With a GitHub App, the installation token is narrowed to that one repository
   * and `permissions`, and expires within the hour (GitHub's limit); tokens are cached until near
   * expiry by `@octokit/auth-app`, and a token request is aborted by `ctx.signal` like every other.
   * @throws ApiError 503 `provider_unavailable` without a credential; {@link ProviderError} for
   *   GitHub's failures; ApiError from `fn` (e.g. 412) as-is; `ctx.signal.reason` once `ctx.signal`
   *   has fired, whatever the request in flight failed with.
   */
  async run<T>(
    ctx: ActionContext,
    target: { owner: string; repo: string },
    permissions: GitHubPermissions,
    fn: (gh: GitHubSession) => Promise<T>,
  ): Promise<T> {
    return this.session(ctx, target.repo, permissions, (octokit) => fn({ octokit, owner: target.owner, repo: target.repo }));
  }

  /**
   * Runs `fn` with a client for the credential's whole account, for the one action that lists
   * repositories (no single repository to narrow to): the host token as is, or an App
   * installation token over all the installation's repositories but with `permissions` only
   * (plus metadata:read). `credential` says which, hence which listing endpoint applies
   * (`GET /user/repos` or `GET /installation/repositories`). Result, caching, abort and errors as
   * {@link run}.
   */
  async runAccount<T>(
    ctx: ActionContext,
    permissions: GitHubPermissions,
    fn: (gh: { octokit: Octokit; credential: GitHubCredential['type'] }) => Promise<T>,
  ): Promise<T> {
    return this.session(ctx, null, permissions, (octokit) => fn({ octokit, credential: this.settings.credential!.type }));
  }

  /** {@link run} and {@link runAccount}: `repo` null asks for an App token not narrowed to a repository. */
  private async session<T>(ctx: ActionContext, repo: string | null, permissions: GitHubPermissions, fn: (octokit: Octokit) => Promise<T>): Promise<T> {
    if (this.settings.unavailable !== null) throw new ApiError('provider_unavailable', `GitHub is unavailable: ${this.settings.unavailable}.`);
    try {
      const token = await this.token(repo, permissions, ctx);
      const octokit = new Octokit({
        baseUrl: this.settings.baseUrl,
        auth: token,
        userAgent: USER_AGENT,
        request: { signal: ctx.signal },
        log: octokitLog(ctx.log),
      });
      const result = await fn(octokit);
      return capResult(result, this.settings.maxResultBytes);
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw toProviderError(err);
    }
  }

  /**
   * The host token, or an App installation token for `repo` (every repository of the installation
   * when null) and `permissions` (plus metadata:read). A cached App token is used as is; otherwise
   * the token request is sent with the call's signal and logged to the call's logger.
   */
  private async token(repo: string | null, permissions: GitHubPermissions, ctx: ActionContext): Promise<string> {
    const cred = this.settings.credential;
    if (cred?.type === 'token') return cred.token;
    const signal = ctx.signal;
    const request = new Octokit({ baseUrl: this.settings.baseUrl, userAgent: USER_AGENT, request: { signal }, log: octokitLog(ctx.log) }).request;
    // An auth for this call only, made by the library's factory from the shared auth's state: the
    // same App, installation and token cache, but this call's request.
    const callAuth = await this.appAuth!({ type: 'installation', factory: (state) => createAppAuth({ ...state, request }) });
    // Also bounded by the signal while waiting on a request another call sent (see below).
    const ask = () => untilAborted(signal, () => callAuth({ type: 'installation', ...(repo === null ? {} : { repositoryNames: [repo] }), permissions: { metadata: 'read', ...permissions } }));
    let auth: Awaited<ReturnType<typeof ask>>;
    try {
      auth = await ask();
    } catch (err) {
      // @octokit/auth-app shares one pending token request among concurrent asks for the same
      // repository and permissions (process-wide), so this call may have waited on another call's
      // request that the other call's signal aborted: then ask again, with this call's signal.
      if (signal.aborted || !isAbortFailure(err)) throw err;
      auth = await ask();
    }
    registerSecret(auth.token);
    return auth.token;
  }
}

/**
 * Whether a request failed because its signal fired: Octokit rethrows fetch's `AbortError` as is
 * and wraps any other abort reason in an `HttpError` without a response whose `cause` is that
 * reason (a network failure's cause is fetch's `TypeError` instead).
 */
function isAbortFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return true;
  return isRequestError(err) && err.response === undefined && err.cause !== undefined && !(err.cause instanceof TypeError);
}

/** Octokit's request log lines go to the call's logger at debug level; warnings stay warnings. */
function octokitLog(log: Logger) {
  return {
    debug: (msg: string) => log.debug({ provider: 'github' }, msg),
    info: (msg: string) => log.debug({ provider: 'github' }, msg),
    warn: (msg: string) => log.warn({ provider: 'github' }, msg),
    error: (msg: string) => log.debug({ provider: 'github' }, msg),
  };
}

interface OctokitRequestError extends Error {
  status: number;
  response?: { status: number; headers: Record<string, string | number | undefined>; data?: unknown };
}

function isRequestError(err: unknown): err is OctokitRequestError {
  return err instanceof Error && err.name === 'HttpError' && typeof (err as { status?: unknown }).status === 'number';
}

/**
 * Maps a failure to what the call path answers. An Octokit `HttpError` with a response becomes
 * {@link ProviderError} (`providerStatus` GitHub's HTTP status, `providerCode` a stable slug, `details`
 * GitHub's `message`, field `errors`, `documentation_url` and request id, redacted); one without a
 * response (DNS, refused connection) becomes `network_error`. Everything else passes through.
 */
export function toProviderError(err: unknown): unknown {
  if (!isRequestError(err)) return err;
  const response = err.response;
  if (!response) {
    return new ProviderError(redactString(`GitHub could not be reached: ${err.message}`), null, 'network_error');
  }
  const data = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as Record<string, unknown>;
  const message = redactString(typeof data['message'] === 'string' ? data['message'] : err.message);
  const headers = response.headers;
  const rateLimited = err.status === 429 || (err.status === 403 && (headers['x-ratelimit-remaining'] === '0' || /rate limit/i.test(message)));
  const details = redact({
    message,
    ...(data['errors'] !== undefined ? { errors: data['errors'] } : {}),
    ...(typeof data['documentation_url'] === 'string' ? { documentation_url: data['documentation_url'] } : {}),
    ...(headers['x-github-request-id'] !== undefined ? { github_request_id: String(headers['x-github-request-id']) } : {}),
    ...(rateLimited && headers['retry-after'] !== undefined ? { retry_after_s: Number(headers['retry-after']) } : {}),
  });
  return new ProviderError(`GitHub answered ${err.status}: ${message}`, err.status, rateLimited ? 'rate_limited' : codeFor(err.status), details);
}

function codeFor(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 422:
      return 'validation_failed';
    default:
      return status >= 500 ? 'server_error' : `http_${status}`;
  }
}

/** True when `err` is GitHub's 404 (used where a missing thing is an expected answer). */
export function isNotFound(err: unknown): boolean {
  return isRequestError(err) && err.status === 404;
}
