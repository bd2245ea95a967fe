import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import type { Deps } from './deps.js';

/** A listening broker: its origin (`http://127.0.0.1:<port>`) and a graceful stop. */
export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  /**
   * Stops accepting connections, waits for requests in flight (up to `timeoutMs`, then drops the
   * rest), and resolves. Does not close the database; the caller owns it.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Serves {@link createApp} on `host:port` with @hono/node-server. Port 0 picks a free port.
 * @throws the listen error (e.g. EADDRINUSE).
 */
export async function startServer(deps: Deps, host = deps.config.host, port = deps.config.port): Promise<RunningServer> {
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${urlHost}:${addr.port}`,
    port: addr.port,
    server,
    stop: (timeoutMs = deps.config.shutdownTimeoutMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
