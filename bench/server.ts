/**
 * The bench's server process (started by `bench/run.ts`, IPC on): the real broker (`createDeps`,
 * `startServer`, durable audit with `synchronous=FULL`) with the bench provider, and beside it a
 * bare Hono app on its own port as the baseline, and (g) the floor server on a third port: a bare
 * Hono app that reads the JSON body, computes its SHA-256 and one HMAC, stores the rows of one L1
 * call (`bench/floor.ts`) through a group commit, claim then outcome, and answers after the
 * outcome's commit. Logs go to stdout like `broker serve`.
 * `BENCH_BROKER_ONLY=1` starts the broker alone (the growth, (h) and PostgreSQL runs). With a
 * postgres:// `BROKER_DATABASE_URL` the broker opens PostgreSQL (`createDeps` as `serve` does), and
 * `BENCH_SETUP_GROUPS` (a JSON list) makes it first grant each of those groups L1 on `bench`.
 * IPC: sends `{broker, bare, floor, pid, creds}` once listening (`creds`: the set-up groups'
 * `{keyid, secret}`, the secret in base64); answers `'rss'` with `{maxRssBytes}` and `'cpu'`
 * with `{cpuUs}` (user + system CPU of this process so far, µs); exits on `'stop'`.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startServer } from '../src/app/server.js';
import { FloorCommit, FloorWriter, openFloorDb } from './floor.js';
import { createDeps } from '../src/app/deps.js';
import { createGrant } from '../src/modules/grants/service.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/log.js';
import { benchCatalog, benchDeps } from './setup.js';

const env = process.env as Record<string, string>;
const logger = createLogger(env['BROKER_LOG_LEVEL'] ?? 'info');
const onPostgres = /^postgres(ql)?:/.test(env['BROKER_DATABASE_URL'] ?? '');
const deps = onPostgres ? await createDeps(loadConfig(env), { catalog: benchCatalog(), logger }) : await benchDeps(env, { logger });
const setupGroups = JSON.parse(env['BENCH_SETUP_GROUPS'] ?? '[]') as string[];
for (const group of setupGroups) {
  await createGrant(deps, { group, provider: 'bench', level: 1, reason: 'bench', allowed_actions: null, denied_actions: null, resources: null }, 'operator:bench');
}
// Secrets cross the IPC channel (JSON) as base64.
const creds = setupGroups.map((g) => ({ keyid: deps.keys.current(g).keyid, secret: Buffer.from(deps.keys.current(g).secret).toString('base64') }));
const broker = await startServer(deps, '127.0.0.1', 0);

/** Serves `app` on 127.0.0.1, an ephemeral port; returns its URL. */
async function listen(app: Hono): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server)) as Server;
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** (g): the floor of a durable signed call over HTTP, with none of the broker's logic. */
function floorApp(): Hono {
  const writer = new FloorWriter(openFloorDb(path.join(process.env['BROKER_DATA_DIR']!, 'floor.db')));
  const commits = new FloorCommit(writer);
  const secret = Buffer.alloc(32, 7);
  let n = 0;
  return new Hono().post('/v1/ext/calls', async (c) => {
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const body = JSON.parse(new TextDecoder().decode(raw)) as { action?: string };
    const digest = createHash('sha256').update(raw).digest('base64');
    const signature = createHmac('sha256', secret).update(`"@method": POST\n"content-digest": sha-256=:${digest}:\n"@signature-params": ${body.action}`).digest('base64');
    const group = `call${n % 128}`;
    const requestId = `g-${n++}-${signature.slice(0, 8)}`;
    await commits.run(() => writer.claim(group, requestId, digest, Date.now()));
    await commits.run(() => writer.end(group, requestId, Date.now()));
    return c.json({ request_id: requestId, status: 'succeeded', action: body.action, result: { ok: true } });
  });
}

const brokerOnly = process.env['BENCH_BROKER_ONLY'] === '1';
const bareUrl = brokerOnly ? null : await listen(new Hono().get('/', (c) => c.text('ok')));
const floorUrl = brokerOnly ? null : await listen(floorApp());

process.on('message', (msg) => {
  if (msg === 'rss') process.send!({ maxRssBytes: process.resourceUsage().maxRSS * 1024 });
  if (msg === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpuUs: user + system });
  }
  if (msg === 'stop') void broker.stop(1000).then(() => process.exit(0));
});
process.send!({ broker: broker.url, bare: bareUrl, floor: floorUrl, pid: process.pid, creds });
