import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { AppEnv } from './env.js';

/** The labels of the HTTP instruments. */
export interface HttpLabels {
  method: string;
  route: string;
  status: string;
}

/** The broker's Prometheus registry and the HTTP instruments on it. */
export interface Metrics {
  registry: Registry;
  /** `broker_http_requests_total{method, route, status}`. */
  requests: { inc(labels: HttpLabels, value?: number): void };
  /** `broker_http_request_duration_seconds{method, route, status}` (a histogram, seconds). */
  duration: { observe(labels: HttpLabels, seconds: number): void };
  /** Both at once, as {@link requestRecorder} does for every request. */
  http: HttpRequestMetrics;
}

/** Upper bounds of the latency histogram's buckets, in seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** One label set's counts: requests, and the latency histogram (per bucket, not cumulative). */
interface Series {
  labels: HttpLabels;
  requests: number;
  count: number;
  sum: number;
  buckets: Float64Array;
}

/**
 * The two HTTP instruments, kept as plain counts per label set and rendered for prom-client's
 * registry when it is scraped. prom-client's Counter and Histogram hash and validate the label
 * object on every update (~1 µs a request with both); here a request is one Map lookup and a
 * few additions. The exposition is the one prom-client's Counter and Histogram give: the same
 * names, help, types, label order (`le` first) and cumulative buckets with `+Inf`, `_sum`, `_count`.
 */
export class HttpRequestMetrics {
  /** Every series, in the order first seen (the exposition's order). */
  private readonly series = new Map<string, Series>();
  /** The same series by route → method → status: found without building a key string. */
  private readonly byRoute = new Map<string, Map<string, Map<number, Series>>>();

  /** Registers `broker_http_requests_total` and `broker_http_request_duration_seconds` in `registry`. */
  constructor(registry: Registry) {
    const requests = {
      name: 'broker_http_requests_total',
      help: 'HTTP requests by route and status',
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({ ...meta(requests), values: [...this.series.values()].filter((s) => s.requests > 0).map((s) => ({ labels: { ...s.labels }, value: s.requests })) }),
      reset: () => this.resetRequests(),
    };
    const duration = {
      name: 'broker_http_request_duration_seconds',
      help: 'HTTP request latency in seconds by route and status',
      type: 'histogram',
      aggregator: 'sum',
      getForPromString: async () => ({ ...meta(duration), values: this.histogramValues(duration.name) }),
      get: async () => ({
        ...meta(duration),
        values: this.histogramValues(duration.name).map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })),
      }),
      reset: () => this.resetDurations(),
    };
    registry.registerMetric(requests as unknown as Metric);
    registry.registerMetric(duration as unknown as Metric);
  }

  /** Counts one request: +1 request, and one latency observation of `seconds`. */
  record(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.byRoute.get(route);
    if (byMethod === undefined) this.byRoute.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (s === undefined) byStatus.set(status, (s = this.seriesFor(method, route, String(status))));
    s.requests += 1;
    this.observeIn(s, seconds);
  }

  /** +`value` (default 1) requests with `labels` (prom-client's `Counter.inc(labels, value)`). */
  inc(labels: HttpLabels, value = 1): void {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`a counter only increases by a finite amount: ${value}`);
    this.seriesFor(labels.method, labels.route, labels.status).requests += value;
  }

  /** One latency observation (prom-client's `Histogram.observe(labels, value)`), in seconds. */
  observe(labels: HttpLabels, seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError(`not a finite duration: ${seconds}`);
    this.observeIn(this.seriesFor(labels.method, labels.route, labels.status), seconds);
  }

  private seriesFor(method: string, route: string, status: string): Series {
    const key = `${status} ${method} ${route}`;
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { method, route, status }, requests: 0, count: 0, sum: 0, buckets: new Float64Array(DURATION_BUCKETS.length) };
      this.series.set(key, s);
    }
    return s;
  }

  private observeIn(s: Series, seconds: number): void {
    s.count += 1;
    s.sum += seconds;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        s.buckets[i]! += 1;
        break;
      }
    }
  }

  private histogramValues(name: string) {
    const values: { labels: Record<string, string | number>; sharedLabels: HttpLabels; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        cumulative += s.buckets[i]!;
        values.push({ labels: { le: DURATION_BUCKETS[i]! }, sharedLabels: s.labels, value: cumulative, metricName: `${name}_bucket` });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: `${name}_bucket` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${name}_count` });
    }
    return values;
  }

  private resetRequests(): void {
    for (const s of this.series.values()) s.requests = 0;
  }

  private resetDurations(): void {
    for (const s of this.series.values()) {
      s.count = 0;
      s.sum = 0;
      s.buckets.fill(0);
    }
  }
}

function meta(m: { name: string; help: string; type: string; aggregator: string }) {
  return { name: m.name, help: m.help, type: m.type, aggregator: m.aggregator };
}

/**
 * Creates a registry (one per app, so tests can run several) with process metrics, a request
 * counter and a latency histogram (seconds) labelled by method, route pattern and status.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const http = new HttpRequestMetrics(registry);
  return { registry, requests: http, duration: http, http };
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
 * @returns a recorder `(method, route, status, seconds) => void` bound to `m`.
 */
export function requestRecorder(m: Metrics): (method: string, route: string, status: number, seconds: number) => void {
  return (method, route, status, seconds) => m.http.record(method, route, status, seconds);
}

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
