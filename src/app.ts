import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Result, Router } from 'hono/router';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';
import type { H, RouterRoute } from 'hono/types';
import { getPath } from 'hono/utils/url';
import { HTTPException } from 'hono/http-exception';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { authenticate } from './auth/middleware.js';
import type { Deps } from './deps.js';
import { logRequest, type Logger } from './log.js';
import { redactString } from './audit/redact.js';
import { pendingMigrations, writeProbe } from './db/open.js';
import { kRequestState, requestState, type AppEnv, type RequestState } from './http/env.js';
import { requestRecorder } from './http/metrics.js';
import { ApiError, problemResponse } from './http/problem.js';
import { whoamiRoute } from './http/whoami.js';
import { grantsRoutes } from './broker/grants/routes.js';
import { auditRoutes } from './audit/routes.js';
import { kernelRoutes } from './kernel/routes.js';
import { callRoutes } from './broker/calls/routes.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the broker's Hono app over its dependencies: request ids and logging, metrics, the body
 * limit, `/health`, `/ready`, `/metrics`, the signed `/v1/*` routes of every capability, and one
 * error handler that renders every failure as RFC 9457 problem+json.
 * Tests call `createApp(deps).request(...)` in-process or serve it on port 0.
 */
export function createApp(deps: Deps): Hono<AppEnv> {
  const router = new RecordingRouter();
  const app = new Hono<AppEnv>({ router });
  // Per-request child loggers come from one child of the root, so pino does not rebuild its
  // formatters for each (a child of the root logger rebuilds them).
  const requestLogs = deps.logger.child({});

  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/ready', (c) => {
    const reasons = readinessProblems(deps);
    if (reasons.length > 0) {
      return problemResponse(new ApiError('not_ready', reasons.join('; '), { reasons, providers: providerStatus(deps) }), c.req.path);
    }
    return c.json({ status: 'ready', providers: providerStatus(deps) });
  });
  app.get('/metrics', async (c) => {
    c.header('content-type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

  const auth = authenticate(deps);
  app.use('/v1/*', (c, next) => {
    // requestId and log for the handlers (made only here: other routes do not read them).
    c.set('requestId', requestState(c.req.raw)?.requestId ?? randomUUID());
    c.set('log', requestLog(c, requestLogs));
    return auth(c, next);
  });
  app.get('/v1/whoami', whoamiRoute);
  app.route('/v1/grants', grantsRoutes(deps));
  app.route('/v1/audit', auditRoutes(deps));
  app.route('/', kernelRoutes(deps));
  app.route('/', callRoutes(deps));

  app.notFound((c) => notFound(app, c));
  app.onError((err, c) => renderError(err, c, requestLogs));
  instrument(app, router, deps, requestLogs);
  return app;
}

/**
 * Hono's default router (SmartRouter over RegExpRouter and TrieRouter) that keeps the last match
 * it made: the app's fetch wrapper reads it, right after dispatching a request (Hono matches
 * synchronously, once per request), for the metrics' route label and the logged path.
 */
class RecordingRouter implements Router<[H, RouterRoute]> {
  readonly name = 'RecordingRouter';
  private readonly inner = new SmartRouter<[H, RouterRoute]>({ routers: [new RegExpRouter(), new TrieRouter()] });
  /** The last `match` call's path and result; cleared by whoever reads them. */
  lastPath: string | undefined;
  last: Result<[H, RouterRoute]> | undefined;

  add(method: string, path: string, handler: [H, RouterRoute]): void {
    this.inner.add(method, path, handler);
  }

  match(method: string, path: string): Result<[H, RouterRoute]> {
    this.lastPath = path;
    return (this.last = this.inner.match(method, path));
  }
}

/** The metrics' route label: the last matched pattern that is not middleware, `unmatched` for none. */
function routeOf(matched: Result<[H, RouterRoute]> | undefined): string {
  const handlers = matched?.[0];
  if (handlers) {
    for (let i = handlers.length - 1; i >= 0; i--) {
      const route = handlers[i]![0][1];
      if (route.method !== 'ALL') return route.path;
    }
  }
  return 'unmatched';
}

/**
 * Wraps `app.fetch` (what the Node server and `app.request` call) with what every request gets,
 * outside Hono's middleware chain, so a route with one handler (`/health`) is answered without
 * an async middleware dispatch:
 * - a request id (a valid `X-Request-Id` echoed, else a UUID), on the response and, as
 *   {@link RequestState}, on the Request for the `/v1` middleware and the error handler;
 * - the body limit: a `Content-Length` over it is answered 413 `payload_too_large` before
 *   anything is read; other bodies are counted by `readRawBody`, which every body read goes
 *   through;
 * - once answered: the request metrics and one log line (req_id, method, path, status,
 *   duration_ms).
 */
function instrument(app: Hono<AppEnv>, router: RecordingRouter, deps: Deps, requestLogs: Logger): void {
  const dispatch = app.fetch;
  const limit = deps.config.bodyLimitBytes;
  const record = requestRecorder(deps.metrics);
  app.fetch = (request, env, executionCtx) => {
    const start = performance.now();
    const bindings = env as Partial<HttpBindings> | undefined;
    // Plain headers read from Node's parsed headers when there are some.
    const headers = bindings?.incoming?.headers;
    const incoming = plainHeader(headers, request, 'x-request-id');
    // (An id shaped like a credential would reach the logs unredacted as the req_id binding.)
    const requestId = incoming !== undefined && REQUEST_ID_RE.test(incoming) && redactString(incoming) === incoming ? incoming : randomUUID();
    (request as unknown as Record<symbol, RequestState>)[kRequestState] = { requestId, bodyLimitBytes: limit, log: undefined };
    // On Node, on the ServerResponse: Node merges it into the response's head, so the response
    // is never rebuilt around a web Headers object (app.request has no outgoing).
    const outgoing = bindings?.outgoing;
    outgoing?.setHeader('X-Request-Id', requestId);
    const method = request.method;
    let res: Response | Promise<Response>;
    let path: string;
    let matched: Result<[H, RouterRoute]> | undefined;
    const length = plainHeader(headers, request, 'content-length');
    if (length !== undefined && parseInt(length, 10) > limit) {
      path = getPath(request);
      matched = router.match(method === 'HEAD' ? 'GET' : method, path);
      res = problemResponse(new ApiError('payload_too_large', `The request body is larger than ${limit} bytes.`), path);
    } else {
      router.last = router.lastPath = undefined;
      res = dispatch(request, env, executionCtx);
      path = router.lastPath ?? getPath(request);
      matched = router.last;
    }
    router.last = router.lastPath = undefined;
    const done: Answered = { start, requestId, method, path, route: routeOf(matched), setRequestId: outgoing === undefined, record, requestLogs };
    return res instanceof Promise ? res.then((r) => answered(r, done)) : answered(res, done);
  };
}

/** What {@link answered} needs about a dispatched request. */
interface Answered {
  start: number;
  requestId: string;
  method: string;
  path: string;
  route: string;
  /** No Node response to carry X-Request-Id: set it on the web Response. */
  setRequestId: boolean;
  record: (method: string, route: string, status: number, seconds: number) => void;
  requestLogs: Logger;
}

/** Records and logs an answered request (module-level: no closure per request). */
function answered(res: Response, a: Answered): Response {
  if (a.setRequestId) res.headers.set('X-Request-Id', a.requestId);
  const ms = performance.now() - a.start;
  a.record(a.method, a.route, res.status, ms / 1000);
  logRequest(a.requestLogs, a.method, a.path, res.status, ms, a.requestId);
  return res;
}

/** A plain request header: from Node's parsed headers when there are some, else the web Request's. */
function plainHeader(headers: IncomingHttpHeaders | undefined, request: Request, name: string): string | undefined {
  return headers ? (headers[name] as string | undefined) : (request.headers.get(name) ?? undefined);
}

/** The request's child logger (bound to its req_id), made on first use and kept on its state. */
function requestLog(c: Context<AppEnv>, requestLogs: Logger): Logger {
  const state = requestState(c.req.raw);
  if (state === undefined) return requestLogs;
  return (state.log ??= requestLogs.child({ req_id: state.requestId }));
}

/**
 * Why the broker is not ready, empty when it is: the database refuses a write, or committed
 * migrations are not applied.
 */
export function readinessProblems(deps: Pick<Deps, 'db'>): string[] {
  const reasons: string[] = [];
  const probe = writeProbe(deps.db);
  if (probe) reasons.push(`database is not writable: ${probe}`);
  const pending = pendingMigrations(deps.db);
  if (pending > 0) reasons.push(`${pending} migration(s) not applied`);
  return reasons;
}

/** Each provider's availability: `{name: {available, reason?}}` (an unavailable provider answers 503 per call). */
export function providerStatus(deps: Pick<Deps, 'catalog'>): Record<string, { available: boolean; reason?: string }> {
  return Object.fromEntries(
    deps.catalog.providers.map((p) => {
      const reason = p.unavailableReason();
      return [p.name, reason === null ? { available: true } : { available: false, reason }];
    }),
  );
}

function renderError(err: Error, c: Context<AppEnv>, requestLogs: Logger): Response {
  if (err instanceof ApiError) {
    if (err.status >= 500) requestLog(c, requestLogs).error({ code: err.code, err: err.extensions['cause'] ?? err.message }, 'request failed');
    return problemResponse(err, c.req.path);
  }
  if (err instanceof HTTPException && err.status < 500) {
    return problemResponse(new ApiError('bad_request', err.message || 'The request could not be read.'), c.req.path);
  }
  requestLog(c, requestLogs).error({ err }, 'unhandled error');
  return problemResponse(new ApiError('internal_error', 'The broker failed to handle the request; nothing was executed.'), c.req.path);
}

function notFound(app: Hono<AppEnv>, c: Context<AppEnv>): Response {
  const allowed = allowedMethods(app, c.req.path);
  if (allowed.length > 0) {
    const err = new ApiError('method_not_allowed', `${c.req.method} is not allowed here; use ${allowed.join(', ')}.`, { allowed }, { Allow: allowed.join(', ') });
    return problemResponse(err, c.req.path);
  }
  return problemResponse(new ApiError('not_found', `No route ${c.req.method} ${c.req.path}.`), c.req.path);
}

/** The methods registered for a concrete path (for 405 and `Allow`). */
function allowedMethods(app: Hono<AppEnv>, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const pattern = new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\/:[^/]+/g, '/[^/]+')}$`);
    if (pattern.test(path)) methods.add(r.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}
