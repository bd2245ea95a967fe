import type { MiddlewareHandler } from 'hono';
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

/** Middleware recording every request; the route label is the matched pattern, `unmatched` for 404s. */
export function metricsMiddleware(m: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const route = matchedRoutes(c).findLast((r) => r.method !== 'ALL')?.path ?? 'unmatched';
      const labels = { method: c.req.method, route, status: String(c.res.status) };
      m.requests.inc(labels);
      m.duration.observe(labels, (performance.now() - start) / 1000);
    }
  };
}
