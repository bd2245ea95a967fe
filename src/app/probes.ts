/**
 * The unauthenticated operations outside `/v1/*` that orchestrators and scrapers use: liveness
 * (`GET /health`), readiness (`GET /ready`) and the Prometheus metrics (`GET /metrics`).
 */
import { z } from 'zod';
import type { Deps } from './deps.js';
import type { Database } from '../platform/db/database.js';
import { pendingMigrations, writeProbe } from '../platform/db/open.js';
import { pendingMigrationsPg, pgErrorText, writeProbePg } from '../platform/db/pg.js';
import { createRoute, createRouter, json, mount, problemResponses, PUBLIC_ERRORS, publicProblems, text, type Router } from '../platform/http/contract.js';
import { ApiError, problemResponse } from '../platform/http/problem.js';

/**
 * Why the broker is not ready, empty when it is: the database cannot commit a durable write
 * (SQLite `writeProbe`: a full or read-only disk; PostgreSQL `writeProbePg`: an unreachable,
 * read-only or full server; at most one probe commit per second), or committed migrations are not
 * applied. Never rejects: a database that cannot be asked is a reason.
 */
export async function readinessProblems(deps: { database: Database }): Promise<string[]> {
  const reasons: string[] = [];
  const { database } = deps;
  if (database.engine === 'sqlite') {
    const probe = writeProbe(database.db);
    if (probe) reasons.push(`database is not writable: ${probe}`);
    const pending = pendingMigrations(database.db);
    if (pending > 0) reasons.push(`${pending} migration(s) not applied`);
    return reasons;
  }
  const probe = await writeProbePg(database.pg);
  if (probe) reasons.push(`database is not writable: ${probe}`);
  try {
    const pending = await pendingMigrationsPg(database.pg);
    if (pending > 0) reasons.push(`${pending} migration(s) not applied`);
  } catch (err) {
    // Already said by the probe when the server is gone; otherwise say why the check failed.
    if (!probe) reasons.push(`migrations could not be checked: ${pgErrorText((err as { extensions?: { cause?: unknown } }).extensions?.cause ?? err)}`);
  }
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
export function probeRoutes(deps: Pick<Deps, 'database' | 'catalog' | 'metrics'>): Router {
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
      handler: async (c) => {
        const reasons = await readinessProblems(deps);
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
