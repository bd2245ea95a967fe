/**
 * The unauthenticated operations outside `/v1/*` that orchestrators and scrapers use: liveness
 * (`GET /health`), readiness (`GET /ready`) and the Prometheus metrics (`GET /metrics`).
 */
import { z } from 'zod';
import type { Deps } from './deps.js';
import { pendingMigrations, writeProbe } from '../platform/db/open.js';
import { createRoute, createRouter, json, mount, problemResponses, PUBLIC_ERRORS, publicProblems, text, type Router } from '../platform/http/contract.js';
import { ApiError, problemResponse } from '../platform/http/problem.js';

/**
 * Why the broker is not ready, empty when it is: the database cannot commit a durable write
 * (`writeProbe`: a full or read-only disk; at most one probe commit per second), or committed
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

/** Each provider's availability, as `/ready` answers it. */
const Providers = z.record(z.string(), z.strictObject({ available: z.boolean(), reason: z.string().optional() })).meta({ id: 'ProviderStatus' });

/** The probes, answered without credentials. */
export function probeRoutes(deps: Pick<Deps, 'db' | 'catalog' | 'metrics'>): Router {
  return mount(
    createRouter(),
    {
      route: createRoute({
        method: 'get',
        path: '/health',
        operationId: 'health',
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        security: [],
        responses: { 200: json('The process is up.', z.strictObject({ status: z.literal('ok') })), ...publicProblems() },
      }),
      handler: (c) => c.json({ status: 'ok' }),
    },
    {
      route: createRoute({
        method: 'get',
        path: '/ready',
        operationId: 'ready',
        tags: ['operations'],
        summary: 'Readiness: the database takes durable writes and is migrated',
        security: [],
        responses: {
          200: json('Ready, with each provider\'s availability.', z.strictObject({ status: z.literal('ready'), providers: Providers })),
          ...problemResponses([...PUBLIC_ERRORS, 'not_ready'], { reasons: z.array(z.string()).optional(), providers: Providers.optional() }),
        },
      }),
      handler: (c) => {
        const reasons = readinessProblems(deps);
        if (reasons.length > 0) {
          return problemResponse(new ApiError('not_ready', reasons.join('; '), { reasons, providers: providerStatus(deps) }), c.req.path);
        }
        return c.json({ status: 'ready', providers: providerStatus(deps) });
      },
    },
    {
      route: createRoute({
        method: 'get',
        path: '/metrics',
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        security: [],
        responses: { 200: text('The Prometheus text exposition format.', 'text/plain'), ...publicProblems() },
      }),
      handler: async (c) => {
        c.header('content-type', deps.metrics.registry.contentType);
        return c.body(await deps.metrics.registry.metrics());
      },
    },
  );
}
