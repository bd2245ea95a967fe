import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { startCheckpoints } from '../platform/audit/checkpoints.js';
import { loadAuditSinks } from '../platform/audit/stream/config.js';
import { startAuditSinks } from '../platform/audit/stream/stream.js';
import { startCallRetention } from '../modules/calls/retention.js';
import { readApproversFile } from '../modules/grants/approvers.js';
import { startGrantRequestExpiry } from '../modules/grant-requests/expiry.js';
import { closeDeps, type Deps } from './deps.js';
import { startInstance } from './serving.js';
import { startDispatchLoop } from '../modules/kernel/service/dispatch.js';
import { dropUnredactedDebug } from '../platform/log.js';
import { shutdownTracing, startTracing } from '../platform/trace.js';
import { startIpc, type IpcService } from '../modules/ipc/index.js';
import { loadWebhooks } from '../modules/webhooks/policy.js';
import { startWebhooks, type WebhookLoops } from '../modules/webhooks/service.js';

/** A listening broker: its origin (`http://127.0.0.1:<port>`) and a graceful stop. */
export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  /** The app it serves: the file transport hands its requests to this same instance (its call lanes, backpressure, are per app). */
  app: { fetch(req: Request): Response | Promise<Response> };
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
    app,
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
 * malformed file stops the start, as a malformed `groups.json` stops `createDeps`), takes this
 * process's instance lease and recovers the calls of stopped instances (`startInstance`; a
 * single-server database with a live lease stops the start before anything is written), serves
 * the app, starts the kernel's dispatch loop (with the WIP limits of `policies/runners.json`) and
 * the runner (which first marks the runs a stopped broker left as `interrupted`), the hourly purge of old call rows
 * (`BROKER_CALL_RETENTION`, `startCallRetention`), the sweep of undecided access requests
 * (`startGrantRequestExpiry`), the signed audit checkpoints (`startCheckpoints`), the audit
 * sinks of `policies/audit-sinks.json` (`startAuditSinks`, the file validated before anything
 * starts), when `policies/webhooks.json` names endpoints (validated before anything starts: a
 * malformed file or an unset secret stops the start) the webhook loops (`startWebhooks`), and, when
 * `BROKER_IPC_DIR` is set, the file transport over the same app (`startIpc`, after recovery, so a
 * request file left in `processing/` by a crash replays the recovered outcome), logs where
 * everything is, and on SIGTERM or SIGINT stops accepting connections and request files, lets
 * requests in flight finish (up to `BROKER_SHUTDOWN_TIMEOUT_MS`), stops the
 * loops, writes a final checkpoint, releases the lease, closes providers and the database,
 * exports the last spans (traces are on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, `startTracing`), and
 * exits 0 (1 when the lease was lost to another instance).
 * Test fixtures that need a real broker process call it too.
 * @returns the running server (the process stays up until a signal).
 * @throws Error naming `approvers.json`, `audit-sinks.json` or `webhooks.json` and what is wrong with it, AlreadyServedError naming the
 *   live instance, the listen error (e.g. EADDRINUSE, the lease then released), or the fs error of an
 *   IPC root that cannot be made (the server then stopped, the lease released).
 */
export async function runBroker(deps: Deps): Promise<RunningServer> {
  const dropped = dropUnredactedDebug();
  if (dropped.length > 0) deps.logger.warn({ variables: dropped }, 'ignoring debug variables: they make dependencies log credentials without redaction');
  readApproversFile(deps.config.policiesDir);
  const auditSinks = loadAuditSinks(deps.config.policiesDir, deps.config.dataDir);
  const webhookPolicy = loadWebhooks(deps.config.policiesDir);
  // Before the app is built: its request spans are mounted only when traces are on.
  if (await startTracing()) deps.logger.info('traces on: spans are exported with OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)');
  let shutdown: (signal: string, code?: number) => Promise<void> = async () => {};
  const instance = await startInstance(deps, (err) => {
    deps.logger.fatal({ err: err.message }, 'this broker lost its instance lease to another one; stopping');
    void shutdown('lease lost', 1);
  });
  let running: RunningServer;
  try {
    running = await startServer(deps);
  } catch (err) {
    await instance.release();
    throw err;
  }
  let ipc: IpcService | null = null;
  if (deps.config.ipcDir !== null) {
    try {
      ipc = await startIpc({ config: { ...deps.config, ipcDir: deps.config.ipcDir }, groups: deps.groups.keys(), clock: deps.clock, logger: deps.logger, fetch: (req) => running.app.fetch(req) });
    } catch (err) {
      await running.stop();
      await instance.release();
      throw err;
    }
  }
  let stopDispatch: () => void = () => {};
  let stopRunner: () => void = () => {};
  let stopRetention: () => void = () => {};
  let stopRequestExpiry: () => void = () => {};
  let stopCheckpoints: () => Promise<void> = async () => {};
  let stopAuditSinks: () => Promise<void> = async () => {};
  let webhooks: WebhookLoops | null = null;
  let stopping = false;
  shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'stopping: finishing requests in flight');
    stopDispatch();
    stopRunner();
    stopRetention();
    stopRequestExpiry();
    await Promise.all([running.stop(), ipc?.stop(deps.config.shutdownTimeoutMs)]);
    await webhooks?.stop();
    await stopCheckpoints(); // a final checkpoint over the rows the last requests wrote
    await stopAuditSinks(); // after its batch in flight; the next start goes on from each sink's cursor
    await instance.release();
    await closeDeps(deps);
    await shutdownTracing(deps.config.shutdownTimeoutMs); // the spans of the last requests
    deps.logger.info('stopped');
    deps.logger.flush();
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  instance.listening(running.url);
  const { dataDir, dbPath, masterKey, tokenKey, policiesDir } = deps.paths;
  deps.logger.info(
    { url: running.url, instance: instance.id, data_dir: dataDir, db: dbPath, master_key: masterKey, token_key: tokenKey, policies: policiesDir },
    'broker listening',
  );
  const dirMode = fs.statSync(dataDir).mode & 0o777;
  if ((dirMode & 0o077) !== 0) deps.logger.warn({ data_dir: dataDir, mode: dirMode.toString(8) }, 'the data directory is open to other users; `chmod 700` it (new ones are created 0700)');
  stopDispatch = startDispatchLoop({ ...deps, wip: deps.runner.wipLimits });
  stopRunner = deps.runner.startLoop(Math.min(deps.config.dispatchIntervalMs, 1000));
  stopRetention = startCallRetention(deps);
  stopRequestExpiry = startGrantRequestExpiry(deps);
  stopCheckpoints = startCheckpoints(deps).stop;
  stopAuditSinks = startAuditSinks({ outbox: deps.stores.outbox, logger: deps.logger, metrics: deps.metrics }, auditSinks).stop;
  try {
    webhooks = await startWebhooks(deps, webhookPolicy);
  } catch (err) {
    // The server is up; the webhook loops retry their rounds, only the first cursor write failed.
    deps.logger.error({ err }, 'webhooks could not start; notifications are off until a restart');
  }
  return running;
}
