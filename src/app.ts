import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { randomUUID } from 'node:crypto';
import { authenticate } from './auth/middleware.js';
import type { Deps } from './deps.js';
import { pendingMigrations, writeProbe } from './db/open.js';
import type { AppEnv } from './http/env.js';
import { metricsMiddleware } from './http/metrics.js';
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
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && REQUEST_ID_RE.test(incoming) ? incoming : randomUUID();
    const log = deps.logger.child({ req_id: requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    const start = performance.now();
    await next();
    c.res.headers.set('X-Request-Id', requestId); // not c.header(): that rebuilds the finished response around its body stream
    const ms = Math.round((performance.now() - start) * 100) / 100;
    log.info({ method: c.req.method, path: c.req.path, status: c.res.status, duration_ms: ms }, 'request');
  });
  app.use('*', metricsMiddleware(deps.metrics));
  const limitBody = bodyLimit({
    maxSize: deps.config.bodyLimitBytes,
    onError: (c) =>
      problemResponse(new ApiError('payload_too_large', `The request body is larger than ${deps.config.bodyLimitBytes} bytes.`), c.req.path),
  });
  // Decided from the headers when they suffice (no Transfer-Encoding: no body, or Content-Length),
  // as bodyLimit does, without building a web Request per request; chunked bodies are counted.
  app.use('*', (c, next) => {
    if (c.req.header('transfer-encoding') !== undefined) return limitBody(c, next);
    const length = c.req.header('content-length');
    return length !== undefined && parseInt(length, 10) > deps.config.bodyLimitBytes ? limitBody(c, next) : next();
  });

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

  app.use('/v1/*', authenticate(deps));
  app.get('/v1/whoami', whoamiRoute);
  app.route('/v1/grants', grantsRoutes(deps));
  app.route('/v1/audit', auditRoutes(deps));
  app.route('/', kernelRoutes(deps));
  app.route('/', callRoutes(deps));

  app.notFound((c) => notFound(app, c));
  app.onError((err, c) => renderError(err, c));
  return app;
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

function renderError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof ApiError) {
    if (err.status >= 500) c.var.log?.error({ code: err.code, err: err.extensions['cause'] ?? err.message }, 'request failed');
    return problemResponse(err, c.req.path);
  }
  if (err instanceof HTTPException && err.status < 500) {
    return problemResponse(new ApiError('bad_request', err.message || 'The request could not be read.'), c.req.path);
  }
  c.var.log?.error({ err }, 'unhandled error');
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
