/**
 * The bench's server process (started by `bench/run.ts`, IPC on): the real broker (`createDeps`,
 * `startServer`, durable audit with `synchronous=FULL`) with the bench provider, and beside it a
 * bare Hono app on its own port as the baseline. Logs go to stdout like `broker serve`.
 * IPC: sends `{broker, bare}` URLs once listening; answers `'rss'` with `{maxRssBytes}` and `'cpu'`
 * with `{cpuUs}` (user + system CPU of this process so far, µs); exits on `'stop'`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startServer } from '../src/app/server.js';
import { benchDeps } from './setup.js';

const deps = await benchDeps(process.env as Record<string, string>, {
  logger: (await import('../src/platform/log.js')).createLogger(process.env['BROKER_LOG_LEVEL'] ?? 'info'),
});
const broker = await startServer(deps, '127.0.0.1', 0);

const bare = new Hono().get('/', (c) => c.text('ok'));
const bareServer = await new Promise<Server>((resolve) => {
  const s = serve({ fetch: bare.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server)) as Server;
});
const barePort = (bareServer.address() as AddressInfo).port;

process.on('message', (msg) => {
  if (msg === 'rss') process.send!({ maxRssBytes: process.resourceUsage().maxRSS * 1024 });
  if (msg === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpuUs: user + system });
  }
  if (msg === 'stop') void broker.stop(1000).then(() => process.exit(0));
});
process.send!({ broker: broker.url, bare: `http://127.0.0.1:${barePort}` });
