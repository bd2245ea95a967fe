import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { HTTPException } from 'hono/http-exception';
import { randomUUID } from 'node:crypto';
import { redactString } from '../platform/audit/redact.js';
import { authenticate } from './authenticate.js';
import type { Deps } from './deps.js';
import { probeRoutes } from './probes.js';
import { referenceRoutes } from './reference.js';
import type { AppEnv } from '../platform/http/env.js';
import { requestRecorder, routeLabel } from '../platform/http/metrics.js';
import { annotateRequest, requestSpans } from '../platform/trace.js';
import { ApiError, problemResponse } from '../platform/http/problem.js';
import { identityRoutes } from '../modules/identity/index.js';
import { grantsRoutes } from '../modules/grants/index.js';
import { grantRequestRoutes } from '../modules/grant-requests/index.js';
import { auditRoutes } from '../modules/audit/index.js';
import { kernelRoutes } from '../modules/kernel/index.js';
import { runnerRoutes } from '../modules/runner/index.js';
import { switchRoutes } from '../modules/switches/index.js';
import { webhookRoutes } from '../modules/webhooks/index.js';
import { callRoutes } from '../modules/calls/index.js';
import { tokenRoutes } from '../modules/tokens/index.js';
import { consoleRoutes } from '../console/index.js';

export { providerStatus, readinessProblems } from './probes.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the broker's Hono app over its dependencies: request ids and logging, metrics, the body
 * limit, `/health`, `/ready`, `/metrics`, the signed `/v1/*` routes of every capability, their
 * OpenAPI document (`/openapi.json`, `/docs`), and one error handler that renders every failure as
 * RFC 9457 problem+json. Every route is an operation with a contract; the app's
 * `openAPIRegistry` holds them all.
 * Tests call `createApp(deps).request(...)` in-process or serve it on port 0.
 */
export function createApp(deps: Deps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  // One middleware for every request (each Hono middleware layer is an async dispatch of its
  // own): the request id, the body limit, then, once answered, X-Request-Id, the metrics and the
  // request log line.
  const limit = deps.config.bodyLimitBytes;
  const record = requestRecorder(deps.metrics);
  // The request span, outermost, only when traces are on (off: not mounted at all).
  const spans = requestSpans();
  if (spans) app.use('*', spans);
  app.use('*', async (c, next) => {
    const start = performance.now();
    const incoming = c.req.header('x-request-id');
    // An id that redaction would change (shaped like a credential) is replaced: as the log's
    // req_id binding it would reach the logs as sent.
    const requestId = incoming !== undefined && REQUEST_ID_RE.test(incoming) && redactString(incoming) === incoming ? incoming : randomUUID();
    const log = deps.logger.child({ req_id: requestId });
    c.set('requestId', requestId);
    annotateRequest('broker.http_request_id', requestId);
    c.set('log', log);
    // On Node, on the ServerResponse: Node merges it into the response's head, so the finished
    // response is never rebuilt around a web Headers object (app.request has no outgoing).
    const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
    outgoing?.setHeader('X-Request-Id', requestId);
    try {
      // The body limit: a Content-Length over it is answered here; a chunked body is counted as
      // it is read (readRawBody, which every body read goes through).
      c.set('bodyLimitBytes', limit);
      const length = c.req.header('content-length');
      if (length !== undefined && parseInt(length, 10) > limit) {
        c.res = problemResponse(new ApiError('payload_too_large', `The request body is larger than ${limit} bytes.`), c.req.path);
      } else {
        await next();
      }
    } finally {
      if (outgoing === undefined) c.res.headers.set('X-Request-Id', requestId);
      const status = c.res.status;
      const ms = performance.now() - start;
      record(c.req.method, routeLabel(c), status, ms / 1000);
      log.info({ method: c.req.method, path: c.req.path, status, duration_ms: Math.round(ms * 100) / 100 }, 'request');
    }
  });

  app.route('/', probeRoutes(deps));
  app.use('/v1/*', authenticate(deps));
  app.route('/', identityRoutes());
  app.route('/', grantsRoutes(deps));
  app.route('/', grantRequestRoutes(deps));
  app.route('/', auditRoutes(deps));
  app.route('/', tokenRoutes(deps));
  app.route('/', kernelRoutes(deps));
  app.route('/', runnerRoutes(deps));
  app.route('/', switchRoutes(deps));
  app.route('/', webhookRoutes(deps));
  app.route('/', callRoutes(deps));
  app.route('/', referenceRoutes(app));
  app.route('/console', consoleRoutes(deps, app));

  app.notFound((c) => notFound(app, c));
  app.onError((err, c) => renderError(err, c));
  return app;
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

function notFound(app: OpenAPIHono<AppEnv>, c: Context<AppEnv>): Response {
  const allowed = allowedMethods(app, c.req.path);
  if (allowed.length > 0) {
    const err = new ApiError('method_not_allowed', `${c.req.method} is not allowed here; use ${allowed.join(', ')}.`, { allowed }, { Allow: allowed.join(', ') });
    return problemResponse(err, c.req.path);
  }
  return problemResponse(new ApiError('not_found', `No route ${c.req.method} ${c.req.path}.`), c.req.path);
}

/** The methods registered for a concrete path (for 405 and `Allow`). */
function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const pattern = new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\/:[^/]+/g, '/[^/]+')}$`);
    if (pattern.test(path)) methods.add(r.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}
