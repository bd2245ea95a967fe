/**
 * Credentials never reach a log, even when the host sets a dependency's own debug switch:
 * `GOOGLE_SDK_NODE_LOGGING=all` makes gcp-metadata print the metadata server's token response on
 * stderr, outside the broker's redacting logger. The real `broker serve` process (its whole stdout
 * and stderr captured) answers a Cloud Logs call on the metadata-server credentials with that
 * variable set; the token must appear nowhere in its output.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../../src/client/index.js';
import { loadConfig } from '../../../src/platform/config.js';
import { closeDeps, createDeps } from '../../../src/app/deps.js';
import { createLogger } from '../../../src/platform/log.js';
import { startFakeMetadataServer, type FakeMetadataServer } from '../../fixtures/cloudlogs/fake-metadata.js';
import { startCloudLogsWorld, type CloudLogsWorld } from '../../fixtures/cloudlogs/setup.js';
import { REPO_ROOT, tempDir } from '../../helpers/harness.js';
import { startServeProcess, type ServeProcess } from '../../helpers/process.js';

const TOKEN = `mds-${randomBytes(24).toString('hex')}`;
let world: CloudLogsWorld;
let metadata: FakeMetadataServer;
let serve: ServeProcess;
const clients: Record<string, BrokerClient> = {};

beforeAll(async () => {
  world = await startCloudLogsWorld();
  metadata = await startFakeMetadataServer(TOKEN);
  const dataDir = tempDir();
  const policies = path.join(REPO_ROOT, 'policies');
  serve = await startServeProcess({
    ...world.env,
    BROKER_DATA_DIR: dataDir,
    BROKER_POLICIES_DIR: policies,
    BROKER_LOG_LEVEL: 'debug',
    CLOUDLOGS_CREDENTIALS: 'metadata-server',
    GCE_METADATA_HOST: metadata.host,
    GOOGLE_SDK_NODE_LOGGING: 'all',
  });
  const deps = await createDeps(loadConfig({ BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: policies }), { logger: createLogger('silent') });
  for (const group of ['main', 'developer']) {
    const key = deps.keys.current(group);
    clients[group] = new BrokerClient({ baseUrl: serve.url, credential: { keyid: key.keyid, secret: key.secret } });
  }
  await closeDeps(deps);
}, 60_000);

afterAll(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  await metadata?.close();
  await world?.close();
});

describe('broker serve with GOOGLE_SDK_NODE_LOGGING set', () => {
  it('warns that it ignores the variable, answers the call, and never prints the token', async () => {
    const grant = await clients['main']!.post('/v1/grants', { group: 'developer', provider: 'cloudlogs', level: 1, resources: ['proj-alpha'], reason: 'incident 7' });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);
    const call = await clients['developer']!.post<any>('/v1/ext/calls', { action: 'cloudlogs.list_logs', params: { project: 'proj-alpha' } }, { idempotencyKey: randomUUID() });
    expect(call.status, JSON.stringify(call.body)).toBe(200);
    expect(metadata.tokenRequests()).toHaveLength(1);
    expect(world.fake.requests.map((r) => r.metadata['authorization'])).toEqual([`Bearer ${TOKEN}`]);

    const output = serve.output();
    expect(output).not.toContain(TOKEN);
    expect(output).toContain('ignoring debug variables');
    expect(output).toContain('GOOGLE_SDK_NODE_LOGGING');
  });
});
