import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { startCheckpoints } from './audit/checkpoints.js';
import { startCallRetention } from './broker/calls/retention.js';
import { readApproversFile } from './broker/grants/approvers.js';
import { closeDeps, type Deps } from './deps.js';
import { startDispatchLoop } from './kernel/dispatch.js';
import { dropUnredactedDebug } from './log.js';

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

/**
 * Runs the broker as `broker serve` does: drops the debug variables that would make dependencies
 * log credentials unredacted (`dropUnredactedDebug`, with a warning), checks `approvers.json` (a
 * malformed file stops the start, as a malformed `groups.json` stops `createDeps`), serves the app,
 * starts the kernel's dispatch loop and the hourly purge of old call rows
 * (`BROKER_CALL_RETENTION`, `startCallRetention`) and the signed audit checkpoints
 * (`startCheckpoints`), logs where everything is, and on SIGTERM or SIGINT stops accepting
 * connections, lets requests in flight finish (up to `BROKER_SHUTDOWN_TIMEOUT_MS`), stops the
 * loops, writes a final checkpoint, closes providers and the database, and exits 0.
 * Test fixtures that need a real broker process call it too.
 * @returns the running server (the process stays up until a signal).
 * @throws Error naming `approvers.json` and what is wrong with it, before anything is served.
 */
export async function runBroker(deps: Deps): Promise<RunningServer> {
  const dropped = dropUnredactedDebug();
  if (dropped.length > 0) deps.logger.warn({ variables: dropped }, 'ignoring debug variables: they make dependencies log credentials without redaction');
  readApproversFile(deps.config.policiesDir);
  const running = await startServer(deps);
  const { dataDir, dbPath, masterKey, tokenKey, policiesDir } = deps.paths;
  deps.logger.info(
    { url: running.url, data_dir: dataDir, db: dbPath, master_key: masterKey, token_key: tokenKey, policies: policiesDir },
    'broker listening',
  );
  let stopDispatch: () => void = () => {};
  let stopRetention: () => void = () => {};
  let stopCheckpoints: () => Promise<void> = async () => {};
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'stopping: finishing requests in flight');
    stopDispatch();
    stopRetention();
    await running.stop();
    await stopCheckpoints(); // a final checkpoint over the rows the last requests wrote
    await closeDeps(deps);
    deps.logger.info('stopped');
    deps.logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  stopDispatch = startDispatchLoop(deps);
  stopRetention = startCallRetention(deps);
  stopCheckpoints = startCheckpoints(deps).stop;
  return running;
}
