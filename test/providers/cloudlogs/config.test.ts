/** The Cloud Logs provider's host configuration: unavailability, its reasons, credential redaction. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactString } from '../../../src/platform/audit/redact.js';
import { Catalog } from '../../../src/modules/calls/catalog.js';
import { ApiError } from '../../../src/platform/http/problem.js';
import { createLogger } from '../../../src/platform/log.js';
import { gcloudAdcFile, loadSettings } from '../../../src/providers/cloudlogs/config.js';
import { cloudLogsProvider } from '../../../src/providers/cloudlogs/index.js';
import { hostProviders } from '../../../src/providers/index.js';
import { writeServiceAccount, type ServiceAccount } from '../../fixtures/cloudlogs/credentials.js';
import { startBroker, tempDir } from '../../helpers/harness.js';

let dir: string;
let account: ServiceAccount;
beforeAll(() => {
  dir = tempDir('cloudlogs-config-');
  account = writeServiceAccount(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const reasonFor = (env: Record<string, string>) => cloudLogsProvider(env).unavailableReason();

describe('without usable host credentials the provider is unavailable, and says why', () => {
  it.each([
    ['no variables', {}, 'CLOUDLOGS_PROJECT_IDS is not set'],
    ['no credentials', { CLOUDLOGS_PROJECT_IDS: 'proj-alpha' }, 'GOOGLE_APPLICATION_CREDENTIALS is not set'],
    ['a bad project id', { CLOUDLOGS_PROJECT_IDS: 'proj-alpha,Bad_Id' }, '"Bad_Id", which is not a GCP project id'],
    ['a missing credentials file', { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/adc.json' }, 'ENOENT'],
  ])('%s', (_what, env, reason) => {
    expect(reasonFor(env)).toContain(reason);
  });

  it('without GOOGLE_APPLICATION_CREDENTIALS, names the gcloud file it looked for', () => {
    const empty = tempDir('gcloud-empty-');
    expect(reasonFor({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDSDK_CONFIG: empty })).toBe(
      `GOOGLE_APPLICATION_CREDENTIALS is not set, and there is no gcloud credentials file ${path.join(empty, 'application_default_credentials.json')}`,
    );
    expect(gcloudAdcFile({ HOME: '/home/ops' })).toBe('/home/ops/.config/gcloud/application_default_credentials.json');
    expect(gcloudAdcFile({ HOME: '/home/ops', CLOUDSDK_CONFIG: '/etc/gcloud' })).toBe('/etc/gcloud/application_default_credentials.json');
    expect(gcloudAdcFile({})).toBeNull();
  });

  it('a credentials file that is not JSON or has no type', () => {
    const notJson = path.join(dir, 'not-json.json');
    const noType = path.join(dir, 'no-type.json');
    fs.writeFileSync(notJson, 'nope');
    fs.writeFileSync(noType, '{"client_email":"x"}');
    expect(reasonFor({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', GOOGLE_APPLICATION_CREDENTIALS: notJson })).toContain('is not JSON');
    expect(reasonFor({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', GOOGLE_APPLICATION_CREDENTIALS: noType })).toContain('no "type"');
  });
});

describe("gcloud's application-default credentials", () => {
  it('are used when GOOGLE_APPLICATION_CREDENTIALS is unset, and their refresh token and client secret are redacted', () => {
    const home = tempDir('gcloud-home-');
    const gcloud = path.join(home, '.config', 'gcloud');
    fs.mkdirSync(gcloud, { recursive: true });
    const refreshToken = '1//0gRefreshTokenForTheBrokerTestsOnly-abcdefghijklmnop';
    const clientSecret = 'd-FL95Q19q7MQmFpd7hHD0Ty';
    const file = path.join(gcloud, 'application_default_credentials.json');
    fs.writeFileSync(file, JSON.stringify({ type: 'authorized_user', client_id: '764086051850-x.apps.googleusercontent.com', client_secret: clientSecret, refresh_token: refreshToken }));
    expect(loadSettings({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', HOME: home })).toMatchObject({ reason: null, settings: { credentials: { kind: 'file', file } } });
    expect(redactString(`token ${refreshToken} secret ${clientSecret}`)).not.toMatch(/RefreshTokenForTheBroker|FL95Q19q7MQ/);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS wins over them, and a broken gcloud file says so', () => {
    const home = tempDir('gcloud-home-');
    fs.mkdirSync(path.join(home, '.config', 'gcloud'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'gcloud', 'application_default_credentials.json'), 'not json');
    expect(loadSettings({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', HOME: home, GOOGLE_APPLICATION_CREDENTIALS: account.file })).toMatchObject({
      reason: null,
      settings: { credentials: { kind: 'file', file: account.file } },
    });
    expect(loadSettings({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', HOME: home }).reason).toMatch(/^gcloud credentials: .* is not JSON$/);
  });

  it.each([
    ['CLOUDLOGS_API_ENDPOINT', 'http://127.0.0.1:1/path'],
    ['CLOUDLOGS_MAX_RESULT_BYTES', '12'],
  ])('an invalid %s', (name, value) => {
    const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', GOOGLE_APPLICATION_CREDENTIALS: account.file, [name]: value };
    expect(reasonFor(env)).toContain(name);
  });

  it('answers every call with 503 provider_unavailable and the reason', async () => {
    const provider = cloudLogsProvider({});
    expect(provider.actions.map((a) => a.id)).toEqual(['cloudlogs.list_logs', 'cloudlogs.query_entries', 'cloudlogs.tail_entries']);
    const ctx = { signal: new AbortController().signal, group: 'developer', requestId: 'r', taskId: null, grantResources: null, log: createLogger('silent') };
    for (const action of provider.actions) {
      const range = action.id === 'cloudlogs.query_entries' ? { start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' } : {};
      const params = action.params.parse({ project: 'proj-alpha', ...range });
      const err = await action.execute(params, ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect([(err as ApiError).status, (err as ApiError).code]).toEqual([503, 'provider_unavailable']);
      expect((err as ApiError).detail).toContain('CLOUDLOGS_PROJECT_IDS is not set');
    }
  });
});

describe('with host credentials', () => {
  it('is available, accepts any endpoint form, and registers the key material for redaction', () => {
    for (const endpoint of ['', 'logging.googleapis.com', 'logging.example.com:8443', '[::1]:8085']) {
      const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha, proj-beta', GOOGLE_APPLICATION_CREDENTIALS: account.file, CLOUDLOGS_API_ENDPOINT: endpoint };
      expect(reasonFor(env)).toBeNull();
    }
    expect(redactString(`id=${account.privateKeyId}`)).toBe('id=[REDACTED]');
    expect(redactString(account.privateKeyPem)).not.toContain('PRIVATE KEY');
  });

  it('is registered among the host providers', () => {
    const catalog = new Catalog(hostProviders({}));
    expect(catalog.get('cloudlogs.query_entries')?.provider.unavailableReason()).toBe('CLOUDLOGS_PROJECT_IDS is not set');
  });
});

describe('CLOUDLOGS_CREDENTIALS', () => {
  const ctx = () => ({ signal: new AbortController().signal, group: 'developer', requestId: 'r', taskId: null, grantResources: null, log: createLogger('silent') });

  it('"file", like unset, reads GOOGLE_APPLICATION_CREDENTIALS', () => {
    for (const source of ['file', ' file ', '']) {
      const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDLOGS_CREDENTIALS: source, GOOGLE_APPLICATION_CREDENTIALS: account.file };
      expect(loadSettings(env)).toMatchObject({ reason: null, settings: { credentials: { kind: 'file', file: account.file } } });
    }
    expect(reasonFor({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDLOGS_CREDENTIALS: 'file', GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/adc.json' })).toContain('ENOENT');
  });

  it('"metadata-server" needs no credentials file and ignores GOOGLE_APPLICATION_CREDENTIALS, even one pointing at no file', () => {
    const home = tempDir('gcloud-home-');
    for (const adc of [{}, { GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/adc.json' }]) {
      const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDLOGS_CREDENTIALS: 'metadata-server', HOME: home, ...adc };
      expect(loadSettings(env)).toEqual({
        reason: null,
        settings: {
          projectIds: new Set(['proj-alpha']),
          credentials: { kind: 'metadata-server', serviceAccount: 'default', timeoutMs: 3000 },
          endpoint: null,
          maxResultBytes: 262144,
        },
      });
    }
  });

  it('any other value makes the provider unavailable, naming the variable, and calls answer 503 with it', async () => {
    const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDLOGS_CREDENTIALS: 'bogus', GOOGLE_APPLICATION_CREDENTIALS: account.file };
    const reason = 'CLOUDLOGS_CREDENTIALS must be "file" or "metadata-server"';
    expect(reasonFor(env)).toBe(reason);
    expect(reasonFor({ ...env, CLOUDLOGS_CREDENTIALS: 'Metadata-Server' })).toContain('CLOUDLOGS_CREDENTIALS must be');
    const list = cloudLogsProvider(env).actions.find((a) => a.id === 'cloudlogs.list_logs')!;
    const err = await list.execute(list.params.parse({ project: 'proj-alpha' }), ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([(err as ApiError).status, (err as ApiError).code]).toEqual([503, 'provider_unavailable']);
    expect((err as ApiError).detail).toContain(reason);
  });
});

describe('CLOUDLOGS_SERVICE_ACCOUNT and CLOUDLOGS_METADATA_TIMEOUT_MS', () => {
  const metadataEnv = (extra: Record<string, string>) => ({ CLOUDLOGS_PROJECT_IDS: 'proj-alpha', CLOUDLOGS_CREDENTIALS: 'metadata-server', ...extra });
  const ACCOUNT_REASON = 'CLOUDLOGS_SERVICE_ACCOUNT must be "default" or a service account email';
  const TIMEOUT_REASON = 'CLOUDLOGS_METADATA_TIMEOUT_MS must be an integer from 1 to 60000 (ms)';

  it('take "default" (also when unset or blank) or a service account email, and a timeout in ms (default 3000)', () => {
    const cases: Array<[Record<string, string>, { serviceAccount: string; timeoutMs: number }]> = [
      [{}, { serviceAccount: 'default', timeoutMs: 3000 }],
      [{ CLOUDLOGS_SERVICE_ACCOUNT: ' ', CLOUDLOGS_METADATA_TIMEOUT_MS: '' }, { serviceAccount: 'default', timeoutMs: 3000 }],
      [{ CLOUDLOGS_SERVICE_ACCOUNT: 'default', CLOUDLOGS_METADATA_TIMEOUT_MS: '300' }, { serviceAccount: 'default', timeoutMs: 300 }],
      [{ CLOUDLOGS_SERVICE_ACCOUNT: 'log-reader@proj-alpha.iam.gserviceaccount.com' }, { serviceAccount: 'log-reader@proj-alpha.iam.gserviceaccount.com', timeoutMs: 3000 }],
      [{ CLOUDLOGS_SERVICE_ACCOUNT: ' 123456789-compute@developer.gserviceaccount.com ', CLOUDLOGS_METADATA_TIMEOUT_MS: ' 60000 ' }, { serviceAccount: '123456789-compute@developer.gserviceaccount.com', timeoutMs: 60000 }],
    ];
    for (const [extra, expected] of cases) {
      expect(loadSettings(metadataEnv(extra))).toMatchObject({ reason: null, settings: { credentials: { kind: 'metadata-server', ...expected } } });
    }
  });

  it.each([
    'reader/../../attributes@proj-alpha.iam.gserviceaccount.com',
    'reader@proj-alpha.iam.gserviceaccount.com?recursive=true',
    'reader@proj-alpha..iam.gserviceaccount.com',
    '../../../project/attributes',
    'default/../..',
    'reader%2F@proj-alpha.iam.gserviceaccount.com',
    'ya29.a0AfH6SMBsecret-looking-value',
    'reader',
  ])('refuse the service account %j, without echoing it', (value) => {
    const reason = reasonFor(metadataEnv({ CLOUDLOGS_SERVICE_ACCOUNT: value }));
    expect(reason).toBe(ACCOUNT_REASON);
    expect(reason).not.toContain(value);
  });

  it.each(['0', '-1', '1.5', '3e3', '60001', '9999999', 'abc', '0x10'])('refuse the timeout %j, without echoing it', (value) => {
    const reason = reasonFor(metadataEnv({ CLOUDLOGS_METADATA_TIMEOUT_MS: value }));
    expect(reason).toBe(TIMEOUT_REASON);
  });

  it('make calls answer 503 provider_unavailable when invalid', async () => {
    const ctx = { signal: new AbortController().signal, group: 'developer', requestId: 'r', taskId: null, grantResources: null, log: createLogger('silent') };
    const list = cloudLogsProvider(metadataEnv({ CLOUDLOGS_SERVICE_ACCOUNT: 'a/b' })).actions.find((a) => a.id === 'cloudlogs.list_logs')!;
    const err = await list.execute(list.params.parse({ project: 'proj-alpha' }), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([(err as ApiError).status, (err as ApiError).code, (err as ApiError).detail]).toEqual([503, 'provider_unavailable', expect.stringContaining(ACCOUNT_REASON)]);
    expect((err as ApiError).detail).not.toContain('a/b');
  });

  it('are not read with CLOUDLOGS_CREDENTIALS=file', () => {
    const env = { CLOUDLOGS_PROJECT_IDS: 'proj-alpha', GOOGLE_APPLICATION_CREDENTIALS: account.file, CLOUDLOGS_SERVICE_ACCOUNT: 'a/b', CLOUDLOGS_METADATA_TIMEOUT_MS: '0' };
    expect(loadSettings(env)).toMatchObject({ reason: null, settings: { credentials: { kind: 'file', file: account.file } } });
  });
});

describe('/ready', () => {
  it('shows why the provider is unavailable', async () => {
    const saved = { ids: process.env['CLOUDLOGS_PROJECT_IDS'], adc: process.env['GOOGLE_APPLICATION_CREDENTIALS'], gcloud: process.env['CLOUDSDK_CONFIG'] };
    const gcloud = tempDir('gcloud-empty-');
    process.env['CLOUDLOGS_PROJECT_IDS'] = 'proj-alpha';
    process.env['CLOUDSDK_CONFIG'] = gcloud;
    delete process.env['GOOGLE_APPLICATION_CREDENTIALS'];
    const broker = await startBroker();
    try {
      const body = (await (await fetch(`${broker.url}/ready`)).json()) as { providers: Record<string, unknown> };
      expect(body.providers['cloudlogs']).toEqual({
        available: false,
        reason: `GOOGLE_APPLICATION_CREDENTIALS is not set, and there is no gcloud credentials file ${path.join(gcloud, 'application_default_credentials.json')}`,
      });
    } finally {
      await broker.stop();
      for (const [k, v] of [['CLOUDLOGS_PROJECT_IDS', saved.ids], ['GOOGLE_APPLICATION_CREDENTIALS', saved.adc], ['CLOUDSDK_CONFIG', saved.gcloud]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
