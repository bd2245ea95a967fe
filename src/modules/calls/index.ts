import { Hono } from 'hono';
import { requireRole } from '../../platform/http/guard.js';
import type { AppEnv } from '../../platform/http/env.js';
import { getAnyCallRoute, getOwnCallRoute } from './routes/get-call.js';
import { getCapabilitiesRoute } from './routes/get-capabilities.js';
import { listCallsRoute } from './routes/list-calls.js';
import { postCallRoute } from './routes/post-call.js';
import { CallService, type CallServiceDeps } from './service.js';

/**
 * The external-call routes (issue 4) under the app's `/v1/*` authentication. Agent groups:
 * `POST /v1/ext/calls`, `GET /v1/ext/calls`, `GET /v1/ext/calls/{request_id}`,
 * `GET /v1/ext/capabilities`. Operator and auditor tokens: `GET /v1/calls`,
 * `GET /v1/calls/{group}/{request_id}`.
 *
 * Building them starts the call path of this process (claims stamped with `deps.instanceId`);
 * build them once per server. Crash recovery is not run here but by the serving process once it
 * holds its instance lease (`runBroker`), so building routes never touches other processes' calls.
 */
export function callRoutes(deps: CallServiceDeps): Hono<AppEnv> {
  const service = new CallService(deps);
  const readers = requireRole('operator', 'auditor');
  return new Hono<AppEnv>()
    .post('/v1/ext/calls', postCallRoute(service))
    .get('/v1/ext/calls', listCallsRoute(service.store, 'own'))
    .get('/v1/ext/calls/:request_id', getOwnCallRoute(service.store))
    .get('/v1/ext/capabilities', getCapabilitiesRoute(deps, service))
    .get('/v1/calls', readers, listCallsRoute(service.store, 'all'))
    .get('/v1/calls/:group/:request_id', readers, getAnyCallRoute(service.store));
}
