import { Counter, Histogram, type Registry } from 'prom-client';

/** The call path's Prometheus instruments (on the app's registry, served at `/metrics`). */
export interface CallMetrics {
  /** `broker_calls_total{outcome}`: answers by outcome (`succeeded` or the problem code, `replayed`). */
  calls: Counter<'outcome'>;
  /** `broker_call_commit_batch_writes`: writes (claims, outcomes, refusals) per group commit. */
  batchWrites: Histogram;
  /** `broker_call_commit_seconds`: duration of each group commit, fsync included. */
  commitSeconds: Histogram;
}

/** Creates the instruments on `registry`, or reuses them when already registered there. */
export function callMetrics(registry: Registry): CallMetrics {
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    calls: reuse('broker_calls_total', () => new Counter({ name: 'broker_calls_total', help: 'Answers to POST /v1/ext/calls by outcome', labelNames: ['outcome'], registers: [registry] })),
    batchWrites: reuse(
      'broker_call_commit_batch_writes',
      () => new Histogram({ name: 'broker_call_commit_batch_writes', help: 'Writes per group commit of the call path', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    ),
    commitSeconds: reuse(
      'broker_call_commit_seconds',
      () =>
        new Histogram({
          name: 'broker_call_commit_seconds',
          help: 'Duration of each group commit of the call path, fsync included, in seconds',
          buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
          registers: [registry],
        }),
    ),
  };
}
