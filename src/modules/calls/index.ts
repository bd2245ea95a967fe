import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { getAnyCallOp, getOwnCallOp } from './routes/get-call.js';
import { getCapabilitiesOp } from './routes/get-capabilities.js';
import { getLimitsOp } from './routes/get-limits.js';
import { listAllCallsOp, listOwnCallsOp } from './routes/list-calls.js';
import { postCallOp } from './routes/post-call.js';
import { CallService, type CallServiceDeps } from './service.js';
import { approveCallOp } from './routes/approve-call.js';
import type { CallApprovalDeps } from './approval/service.js';

/**
 * The external-call routes under the app's `/v1/*` authentication. Agent groups:
 * `POST /v1/ext/calls`, `GET /v1/ext/calls`, `GET /v1/ext/calls/{request_id}`,
 * `GET /v1/ext/capabilities`. Operator and auditor tokens: `GET /v1/calls`,
 * `GET /v1/calls/{group}/{request_id}`, `GET /v1/limits`; operators and `main`, carrying an approver's JWS:
 * `POST /v1/calls/{group}/{request_id}/approvals` (per-call approval).
 *
 * Building them starts the call path of this process (claims stamped with `deps.instanceId`);
 * build them once per server. Crash recovery is not run here but by the serving process once it
 * holds its instance lease (`runBroker`), so building routes never touches other processes' calls.
 */
export function callRoutes(deps: CallRoutesDeps): Router {
  const service = new CallService(deps);
  const holds = { holds: deps.stores.holds, clock: deps.clock };
  return mount(
    createRouter(),
    postCallOp(service),
    listOwnCallsOp(service.store),
    getOwnCallOp(service.store, holds),
    getCapabilitiesOp(deps, service),
    listAllCallsOp(service.store),
    getAnyCallOp(service.store, holds),
    getLimitsOp(service.valves, deps.clock),
    approveCallOp({ ...deps, callService: service }),
  );
}

/** What the call routes run on: the call path's deps, and what approving held calls needs besides (`approval/service.ts`). */
export type CallRoutesDeps = CallServiceDeps & Pick<CallApprovalDeps, 'config'> & { stores: CallApprovalDeps['stores'] };
