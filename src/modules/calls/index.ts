import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { getAnyCallOp, getOwnCallOp } from './routes/get-call.js';
import { getCapabilitiesOp } from './routes/get-capabilities.js';
import { getLimitsOp } from './routes/get-limits.js';
import { listAllCallsOp, listOwnCallsOp } from './routes/list-calls.js';
import { postCallOp } from './routes/post-call.js';
import { CallService, type CallServiceDeps } from './service.js';

/**
 * The external-call routes under the app's `/v1/*` authentication. Agent groups:
 * `POST /v1/ext/calls`, `GET /v1/ext/calls`, `GET /v1/ext/calls/{request_id}`,
 * `GET /v1/ext/capabilities`. Operator and auditor tokens: `GET /v1/calls`,
 * `GET /v1/calls/{group}/{request_id}`, `GET /v1/limits`.
 *
 * Building them starts the call path of this process (claims stamped with `deps.instanceId`);
 * build them once per server. Crash recovery is not run here but by the serving process once it
 * holds its instance lease (`runBroker`), so building routes never touches other processes' calls.
 */
export function callRoutes(deps: CallServiceDeps): Router {
  const service = new CallService(deps);
  return mount(
    createRouter(),
    postCallOp(service),
    listOwnCallsOp(service.store),
    getOwnCallOp(service.store),
    getCapabilitiesOp(deps, service),
    listAllCallsOp(service.store),
    getAnyCallOp(service.store),
    getLimitsOp(service.valves, deps.clock),
  );
}
