/**
 * The Cloud Logs provider on the service account attached to a GCE VM, Cloud Run service or GKE
 * workload (`CLOUDLOGS_CREDENTIALS=metadata-server`): the real `@google-cloud/logging` client and
 * google-auth-library's `Compute` against a local fake metadata server (found through
 * `GCE_METADATA_HOST`, set in this file's process only and restored after it) and the local gRPC
 * fake of the Logging API. `GOOGLE_APPLICATION_CREDENTIALS` points at no file throughout: it must
 * not be read.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError, type ActionContext, type Provider } from '../../../src/providers/contract.js';
import { createLogger } from '../../../src/platform/log.js';
import { LOGGING_READ_SCOPE } from '../../../src/providers/cloudlogs/config.js';
import { cloudLogsProvider } from '../../../src/providers/cloudlogs/index.js';
import {
  startFakeMetadataServer,
  TOKEN_PATH,
  tokenPath,
  unreachableHost,
  type FakeMetadataServer,
  type MetadataRequest,
} from '../../fixtures/cloudlogs/fake-metadata.js';
import { startCloudLogsWorld, type CloudLogsWorld } from '../../fixtures/cloudlogs/setup.js';
import { startBroker, type TestBroker } from '../../helpers/harness.js';

/** An access token of a shape no redaction pattern knows: only its registration can redact it. */
const newToken = () => `mds-${randomBytes(24).toString('hex')}`;
const TOKEN = newToken();
const NO_FILE = '/nonexistent/application_default_credentials.json';
const TOKEN_FAILURE = "The host's Google credentials could not produce a token";
const DAY = '2026-01-01T00:00:00.000Z';
const NEXT_DAY = '2026-01-02T00:00:00.000Z';
const ACCOUNT = 'log-reader@proj-alpha.iam.gserviceaccount.com';

/** The variables this file sets in its own process, restored afterwards. */
const TOUCHED = [
  'GCE_METADATA_HOST',
  'METADATA_SERVER_DETECTION',
  'CLOUDLOGS_PROJECT_IDS',
  'CLOUDLOGS_CREDENTIALS',
  'CLOUDLOGS_API_ENDPOINT',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLOUDLOGS_SERVICE_ACCOUNT',
  'CLOUDLOGS_METADATA_TIMEOUT_MS',
] as const;
const savedEnv = Object.fromEntries(TOUCHED.map((k) => [k, process.env[k]]));

let world: CloudLogsWorld;
let metadata: FakeMetadataServer;
const providers: Provider[] = [];
const logLines: string[] = [];

/** The provider's host environment: the fake Logging API, the metadata server, and no ADC file. */
const hostEnv = (extra: Record<string, string> = {}) => ({
  ...world.env,
  CLOUDLOGS_CREDENTIALS: 'metadata-server',
  GOOGLE_APPLICATION_CREDENTIALS: NO_FILE,
  ...extra,
});

/** A new provider (own clients, so no cached token) on the metadata server. */
function metadataProvider(extra: Record<string, string> = {}): Provider {
  const provider = cloudLogsProvider(hostEnv(extra));
  providers.push(provider);
  return provider;
}

function context(): ActionContext {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { signal: new AbortController().signal, group: 'developer', requestId: 'req-1', taskId: null, grantResources: null, log: createLogger('debug', sink) };
}

/** Validates `raw` with the action's schema, as the broker does, then executes it. */
async function run(p: Provider, id: string, raw: unknown): Promise<any> {
  const action = p.actions.find((a) => a.id === id);
  if (!action) throw new Error(`no action ${id}`);
  return action.execute(action.params.parse(raw), context());
}

/** A recorded metadata request as method, path, query parameters (in order) and `Metadata-Flavor`. */
function parsed(r: MetadataRequest) {
  const url = new URL(r.url, 'http://metadata.invalid');
  return { method: r.method, path: url.pathname, query: [...url.searchParams], flavor: r.flavor };
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<any> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
}

beforeAll(async () => {
  world = await startCloudLogsWorld();
  metadata = await startFakeMetadataServer(TOKEN);
  process.env['GCE_METADATA_HOST'] = metadata.host;
});
afterAll(async () => {
  await Promise.all(providers.map((p) => p.close?.()));
  await metadata?.close();
  await world?.close();
  for (const k of TOUCHED) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});
beforeEach(() => {
  world.fake.requests.length = 0;
  world.fake.logs.clear();
  world.fake.entries.clear();
  world.fake.tail = { batches: [] };
  metadata.requests.length = 0;
  metadata.token = TOKEN;
  metadata.expiresIn = 3599;
  metadata.failWith = null;
  metadata.hang = false;
  metadata.accounts = ['default'];
  logLines.length = 0;
});

describe('the actions on the metadata server', () => {
  it("send its token as the Bearer credential, ignoring a GOOGLE_APPLICATION_CREDENTIALS that points at no file, and return and log no token", async () => {
    const provider = metadataProvider();
    expect(provider.unavailableReason()).toBeNull();
    expect(metadata.requests).toEqual([]);

    world.fake.logs.set('proj-alpha', ['stdout']);
    const result = await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(result.logs).toEqual(['projects/proj-alpha/logs/stdout']);
    expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);
    expect(metadata.requests.map(parsed)).toEqual([{ method: 'GET', path: TOKEN_PATH, query: [['scopes', LOGGING_READ_SCOPE]], flavor: 'Google' }]);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
    expect(logLines.join('')).not.toContain(TOKEN);
  });

  it('ask the metadata server once while the token is fresh, for every project and action', async () => {
    const provider = metadataProvider();
    await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' });
    await run(provider, 'cloudlogs.list_logs', { project: 'proj-beta' });
    await run(provider, 'cloudlogs.query_entries', { project: 'proj-beta', start: DAY, end: NEXT_DAY });
    world.fake.tail = { batches: [[{ timestamp: DAY, insertId: 'live1', textPayload: 'live' }]] };
    const tail = await run(provider, 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 200 });
    expect(tail).toMatchObject({ stop_reason: 'window', entries: [{ insertId: 'live1' }] });
    expect(metadata.tokenRequests()).toHaveLength(1);
    expect(world.fake.requests.map((r) => [r.method, r.metadata['authorization']])).toEqual([
      ['ListLogs', `Bearer ${TOKEN}`],
      ['ListLogs', `Bearer ${TOKEN}`],
      ['ListLogEntries', `Bearer ${TOKEN}`],
      ['TailLogEntries', `Bearer ${TOKEN}`],
    ]);
  });

  // google-auth-library shares one token request among concurrent fetches; the provider relies on
  // it (no thundering herd on the metadata server when a token expires under load).
  it('share one token request among concurrent first calls', async () => {
    const provider = metadataProvider();
    world.fake.logs.set('proj-alpha', ['stdout']);
    const results = await Promise.all(Array.from({ length: 6 }, () => run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' })));
    expect(results.map((r) => r.logs)).toEqual(Array.from({ length: 6 }, () => ['projects/proj-alpha/logs/stdout']));
    expect(metadata.tokenRequests()).toHaveLength(1);
    expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual(Array.from({ length: 6 }, () => `Bearer ${TOKEN}`));
  });

  it('redact the token where it turns up in an entry', async () => {
    world.fake.entries.set('proj-alpha', [{ timestamp: DAY, insertId: 'leak1', textPayload: `forwarded ${TOKEN} upstream` }]);
    const result = await run(metadataProvider(), 'cloudlogs.query_entries', { project: 'proj-alpha', start: DAY, end: NEXT_DAY });
    expect(result.entries.map((e: any) => e.textPayload)).toEqual(['forwarded [REDACTED] upstream']);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('fail with the credentials ProviderError when the metadata server answers 500, send nothing to Cloud Logging, and recover after', async () => {
    const provider = metadataProvider();
    metadata.failWith = { status: 500, body: 'metadata server failure' };
    const err = await failure(run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toContain(TOKEN_FAILURE);
    expect(err.message).toContain('server failure');
    expect(err.providerStatus).toBeNull();
    expect(metadata.tokenRequests().length).toBeGreaterThan(0);
    expect(world.fake.requests).toHaveLength(0);

    metadata.failWith = null;
    await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);
  });

  it('fail the same way when the metadata server is unreachable', async () => {
    process.env['GCE_METADATA_HOST'] = await unreachableHost();
    try {
      const err = await failure(run(metadataProvider(), 'cloudlogs.list_logs', { project: 'proj-alpha' }));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.message).toContain(TOKEN_FAILURE);
      expect(err.message).toContain('ECONNREFUSED');
      expect(world.fake.requests).toHaveLength(0);
    } finally {
      process.env['GCE_METADATA_HOST'] = metadata.host;
    }
  });

  it('take the token before the call on a TLS endpoint too, so a failing metadata server fails the call the same way', async () => {
    const provider = metadataProvider({ CLOUDLOGS_API_ENDPOINT: 'logging.invalid' });
    metadata.failWith = { status: 503, body: 'metadata server unavailable' };
    const err = await failure(run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toContain(TOKEN_FAILURE);
    expect(err.message).toContain('server unavailable');
  });
});

describe('the token request', () => {
  it('asks for a token scoped to logging.read only', async () => {
    await run(metadataProvider(), 'cloudlogs.list_logs', { project: 'proj-alpha' });
    const [request, ...more] = metadata.tokenRequests();
    expect(more).toEqual([]);
    expect(parsed(request!).query).toEqual([['scopes', 'https://www.googleapis.com/auth/logging.read']]);
  });

  it('is for the service account CLOUDLOGS_SERVICE_ACCOUNT names', async () => {
    metadata.accounts = ['default', ACCOUNT];
    world.fake.logs.set('proj-alpha', ['stdout']);
    const result = await run(metadataProvider({ CLOUDLOGS_SERVICE_ACCOUNT: ACCOUNT }), 'cloudlogs.list_logs', { project: 'proj-alpha' });
    expect(result.logs).toEqual(['projects/proj-alpha/logs/stdout']);
    expect(metadata.requests.map(parsed)).toEqual([{ method: 'GET', path: tokenPath(ACCOUNT), query: [['scopes', LOGGING_READ_SCOPE]], flavor: 'Google' }]);
    expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);
  });

  it('fails with the credentials ProviderError when the metadata server has no such account', async () => {
    const err = await failure(run(metadataProvider({ CLOUDLOGS_SERVICE_ACCOUNT: ACCOUNT }), 'cloudlogs.list_logs', { project: 'proj-alpha' }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toContain(TOKEN_FAILURE);
    expect(metadata.tokenRequests().map((r) => parsed(r).path)).toContain(tokenPath(ACCOUNT));
    expect(world.fake.requests).toHaveLength(0);
  });
});

describe('a metadata server that accepts the connection and never answers', () => {
  /** Runs `body` with `GCE_METADATA_HOST` on a fake that never answers, closed (hanging connections destroyed) afterwards. */
  async function withSilentServer(body: (silent: FakeMetadataServer) => Promise<void>): Promise<void> {
    const silent = await startFakeMetadataServer(TOKEN);
    silent.hang = true;
    process.env['GCE_METADATA_HOST'] = silent.host;
    try {
      await body(silent);
    } finally {
      process.env['GCE_METADATA_HOST'] = metadata.host;
      await silent.close(); // resolves only once every connection, the hanging ones too, is destroyed
    }
  }

  it('fails the call with the credentials ProviderError after CLOUDLOGS_METADATA_TIMEOUT_MS, sends nothing to Cloud Logging, and recovers once it answers', async () => {
    await withSilentServer(async (silent) => {
      const provider = metadataProvider({ CLOUDLOGS_METADATA_TIMEOUT_MS: '300' });
      const err = await failure(run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' }));
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.message).toBe(`${TOKEN_FAILURE}: the metadata server gave no token within 300 ms`);
      expect(err.providerStatus).toBeNull();
      expect(silent.tokenRequests().length).toBeGreaterThan(0);
      expect(world.fake.requests).toHaveLength(0);
      expect(logLines.join('')).not.toContain(TOKEN);

      silent.hang = false;
      world.fake.logs.set('proj-alpha', ['stdout']);
      const result = await run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' });
      expect(result.logs).toEqual(['projects/proj-alpha/logs/stdout']);
      expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);
    });
  });

  // The timeout race leaves the request behind: one for all concurrent calls (the library shares
  // it), and a later call is not stuck behind it.
  it('leaves one abandoned token request for concurrent calls, and the next call asks again', async () => {
    await withSilentServer(async (silent) => {
      const provider = metadataProvider({ CLOUDLOGS_METADATA_TIMEOUT_MS: '300' });
      const errors = await Promise.all(Array.from({ length: 5 }, () => failure(run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' }))));
      expect(errors.map((e) => e.message)).toEqual(Array.from({ length: 5 }, () => `${TOKEN_FAILURE}: the metadata server gave no token within 300 ms`));
      expect(silent.tokenRequests()).toHaveLength(1);
      await failure(run(provider, 'cloudlogs.list_logs', { project: 'proj-alpha' }));
      expect(silent.tokenRequests()).toHaveLength(2);
      expect(world.fake.requests).toHaveLength(0);
    });
  });

  it('fails a TLS-endpoint call and a tail the same way', async () => {
    await withSilentServer(async () => {
      const tls = metadataProvider({ CLOUDLOGS_METADATA_TIMEOUT_MS: '300', CLOUDLOGS_API_ENDPOINT: 'logging.invalid' });
      const listErr = await failure(run(tls, 'cloudlogs.list_logs', { project: 'proj-alpha' }));
      expect([listErr instanceof ProviderError, listErr.message]).toEqual([true, `${TOKEN_FAILURE}: the metadata server gave no token within 300 ms`]);
      const tailErr = await failure(run(metadataProvider({ CLOUDLOGS_METADATA_TIMEOUT_MS: '300' }), 'cloudlogs.tail_entries', { project: 'proj-alpha', window_ms: 200 }));
      expect([tailErr instanceof ProviderError, tailErr.message]).toEqual([true, `${TOKEN_FAILURE}: the metadata server gave no token within 300 ms`]);
      expect(world.fake.requests).toHaveLength(0);
    });
  });
});

describe('through a running broker', () => {
  /** Everything the broker stored or wrote: its log lines, audit rows and stored call answers. */
  function everythingStored(broker: TestBroker): string {
    const db = broker.deps.db.sqlite;
    const rows = (sql: string) => JSON.stringify(db.prepare(sql).all());
    return [broker.logs.join(''), rows('SELECT * FROM gov_activities'), rows('SELECT * FROM ext_calls')].join('\n');
  }

  /** A broker whose host environment is `env`, and `developer` holding a Cloud Logs grant on it. */
  async function brokerWith(env: Record<string, string>): Promise<TestBroker> {
    Object.assign(process.env, env);
    const broker = await startBroker();
    const res = await broker.client('main').post('/v1/grants', {
      group: 'developer',
      provider: 'cloudlogs',
      level: 1,
      resources: ['proj-alpha'],
      reason: 'read production logs while fixing the incident',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return broker;
  }

  const listLogs = (broker: TestBroker) =>
    broker.client('developer').post<any>('/v1/ext/calls', { action: 'cloudlogs.list_logs', params: { project: 'proj-alpha' } }, { idempotencyKey: randomUUID() });

  it('is ready, answers a call with the metadata token sent to Cloud Logging, and stores the token nowhere', async () => {
    const broker = await brokerWith(hostEnv());
    try {
      const ready = (await (await fetch(`${broker.url}/ready`)).json()) as { providers: Record<string, unknown> };
      expect(ready.providers['cloudlogs']).toEqual({ available: true });
      world.fake.entries.set('proj-alpha', [{ timestamp: DAY, insertId: 'leak1', textPayload: `forwarded ${TOKEN} upstream` }]);
      const res = await broker
        .client('developer')
        .post<any>('/v1/ext/calls', { action: 'cloudlogs.query_entries', params: { project: 'proj-alpha', start: DAY, end: NEXT_DAY } }, { idempotencyKey: randomUUID() });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.result.entries.map((e: any) => e.textPayload)).toEqual(['forwarded [REDACTED] upstream']);
      expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);
      expect(JSON.stringify(res.body)).not.toContain(TOKEN);
      expect(everythingStored(broker)).not.toContain(TOKEN);
    } finally {
      await broker.stop();
    }
  });

  it('answers 502 provider_error without token text when the metadata server answers 500, and keeps serving', async () => {
    const token = newToken();
    metadata.token = token;
    metadata.expiresIn = 60; // inside the client's 5-minute refresh margin: every call asks anew
    const broker = await brokerWith(hostEnv());
    try {
      expect((await listLogs(broker)).status).toBe(200);
      metadata.failWith = { status: 500, body: `metadata server failure after issuing ${token}` };
      const failed = await listLogs(broker);
      expect(failed.status, JSON.stringify(failed.body)).toBe(502);
      expect(failed.body).toMatchObject({ code: 'provider_error', provider_status: null, provider_code: null });
      expect(failed.body.detail).toContain(TOKEN_FAILURE);
      expect(failed.body.detail).toContain('server failure after issuing [REDACTED]');
      expect(JSON.stringify(failed.body)).not.toContain(token);
      expect(everythingStored(broker)).not.toContain(token);

      metadata.failWith = null;
      expect((await listLogs(broker)).status).toBe(200);
      expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${token}`, `Bearer ${token}`]);
    } finally {
      await broker.stop();
    }
  });

  it('answers 502 provider_error, like any token failure, when the metadata server never answers', async () => {
    const silent = await startFakeMetadataServer(TOKEN);
    silent.hang = true;
    const broker = await brokerWith(hostEnv({ GCE_METADATA_HOST: silent.host, CLOUDLOGS_METADATA_TIMEOUT_MS: '300' }));
    try {
      const failed = await listLogs(broker);
      expect(failed.status, JSON.stringify(failed.body)).toBe(502);
      expect(failed.body).toMatchObject({ code: 'provider_error', provider_status: null, provider_code: null });
      expect(failed.body.detail).toContain(`${TOKEN_FAILURE}: the metadata server gave no token within 300 ms`);
      expect(silent.tokenRequests().length).toBeGreaterThan(0);
      expect(world.fake.requests).toHaveLength(0);
    } finally {
      await broker.stop();
      process.env['GCE_METADATA_HOST'] = metadata.host;
      delete process.env['CLOUDLOGS_METADATA_TIMEOUT_MS'];
      await silent.close();
    }
  });

  it('shows an invalid CLOUDLOGS_SERVICE_ACCOUNT on /ready without echoing it, and asks the metadata server nothing', async () => {
    const value = 'reader/../../../project/attributes?recursive=true';
    const broker = await brokerWith(hostEnv({ CLOUDLOGS_SERVICE_ACCOUNT: value }));
    try {
      const text = await (await fetch(`${broker.url}/ready`)).text();
      expect(JSON.parse(text).providers['cloudlogs']).toEqual({
        available: false,
        reason: 'CLOUDLOGS_SERVICE_ACCOUNT must be "default" or a service account email',
      });
      expect(text).not.toContain('attributes');
      const res = await listLogs(broker);
      expect([res.status, res.body.code]).toEqual([503, 'provider_unavailable']);
      expect(JSON.stringify(res.body)).not.toContain('attributes');
      expect(metadata.requests).toEqual([]);
    } finally {
      await broker.stop();
      delete process.env['CLOUDLOGS_SERVICE_ACCOUNT'];
    }
  });

  it('shows an unknown CLOUDLOGS_CREDENTIALS on /ready, naming the variable', async () => {
    const broker = await brokerWith(hostEnv({ CLOUDLOGS_CREDENTIALS: 'bogus' }));
    try {
      const ready = (await (await fetch(`${broker.url}/ready`)).json()) as { providers: Record<string, unknown> };
      expect(ready.providers['cloudlogs']).toEqual({
        available: false,
        reason: 'CLOUDLOGS_CREDENTIALS must be "file" or "metadata-server"',
      });
      const res = await listLogs(broker);
      expect([res.status, res.body.code]).toEqual([503, 'provider_unavailable']);
      expect(res.body.detail).toContain('CLOUDLOGS_CREDENTIALS');
      expect(metadata.requests).toEqual([]);
    } finally {
      await broker.stop();
    }
  });
});
