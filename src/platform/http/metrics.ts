import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppEnv } from './env.js';

/** The broker's Prometheus registry and the HTTP instruments on it. */
export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route' | 'status'>;
}

/**
 * Creates a registry (one per app, so tests can run several) with process metrics, a request
 * counter and a latency histogram (seconds) labelled by method, route pattern and status.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['method', 'route', 'status'] as const;
  return {
    registry,
    requests: new Counter({ name: 'broker_http_requests_total', help: 'HTTP requests by route and status', labelNames, registers: [registry] }),
    duration: new Histogram({
      name: 'broker_http_request_duration_seconds',
      help: 'HTTP request latency in seconds by route and status',
      labelNames,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

/** The route label of a request: its matched pattern (`/v1/calls/:id`), `unmatched` for 404s. */
export function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) if (routes[i]!.method !== 'ALL') return routes[i]!.path;
  return 'unmatched';
}

/**
 * Records one finished request in {@link Metrics}: `broker_http_requests_total` +1 and one
 * `broker_http_request_duration_seconds` observation, labelled `{method, route, status}`.
 * The label objects are made once per (method, route, status) and reused, so a request costs
 * prom-client's two updates and one Map lookup, no allocation.
 * @returns a recorder `(method, route, status, seconds) => void` bound to `m`.
 */
export function requestRecorder(m: Metrics): (method: string, route: string, status: number, seconds: number) => void {
  const labelSets = new Map<string, { method: string; route: string; status: string }>();
  return (method, route, status, seconds) => {
    const key = `${status} ${method} ${route}`;
    let labels = labelSets.get(key);
    if (labels === undefined) {
      labels = { method, route, status: String(status) };
      if (labelSets.size < MAX_LABEL_SETS) labelSets.set(key, labels); // routes and methods are finite; this is a backstop
    }
    m.requests.inc(labels);
    m.duration.observe(labels, seconds);
  };
}
const MAX_LABEL_SETS = 4096;

/** Middleware recording every request; the route label is the matched pattern, `unmatched` for 404s. */
export function metricsMiddleware(m: Metrics): MiddlewareHandler<AppEnv> {
  const record = requestRecorder(m);
  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      record(c.req.method, routeLabel(c), c.res.status, (performance.now() - start) / 1000);
    }
  };
}
