import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import type { GrantRequestDeps } from './service.js';
import { approveGrantRequestOp } from './routes/approve-request.js';
import { createGrantRequestOp } from './routes/create-request.js';
import { denyGrantRequestOp } from './routes/deny-request.js';
import { getGrantRequestOp } from './routes/get-request.js';
import { listGrantRequestsOp } from './routes/list-requests.js';

/**
 * The `/v1/grant-requests` routes, each with its access guard (agent groups ask and read their
 * own; operators and `main` decide; operators and auditors read; see access.ts).
 */
export function grantRequestRoutes(deps: GrantRequestDeps): Router {
  return mount(createRouter(), createGrantRequestOp(deps), listGrantRequestsOp(deps), getGrantRequestOp(deps), approveGrantRequestOp(deps), denyGrantRequestOp(deps));
}
