import { Hono } from 'hono';
import { requireRole } from '../../auth/middleware.js';
import type { Deps } from '../../deps.js';
import type { AppEnv } from '../../http/env.js';
import { recoverInterruptedCalls } from './recovery.js';
import { getAnyCallRoute, getOwnCallRoute } from './routes/get-call.js';
import { getCapabilitiesRoute } from './routes/get-capabilities.js';
import { listCallsRoute } from './routes/list-calls.js';
import { postCallRoute } from './routes/post-call.js';
import { CallService } from './service.js';

/**
 * The external-call routes (issue 4) under the app's `/v1/*` authentication. Agent groups:
 * `POST /v1/ext/calls`, `GET /v1/ext/calls`, `GET /v1/ext/calls/{request_id}`,
 * `GET /v1/ext/capabilities`. Operator and auditor tokens: `GET /v1/calls`,
 * `GET /v1/calls/{group}/{request_id}`.
 *
 * Building them starts the call path of this process: calls left `running` by a previous process
 * are marked `unknown_outcome` first (crash recovery, audited), since no call can be running in a
 * call path that does not exist yet. Build them once per server.
 */
export function callRoutes(deps: Deps): Hono<AppEnv> {
  recoverInterruptedCalls(deps);
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
