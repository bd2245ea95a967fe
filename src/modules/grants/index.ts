import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import type { GrantDeps } from './service.js';
import { amendGrantOp } from './routes/amend-grant.js';
import { approveGrantOp } from './routes/approve-grant.js';
import { createGrantOp } from './routes/create-grant.js';
import { getGrantOp } from './routes/get-grant.js';
import { listGrantsOp } from './routes/list-grants.js';
import { renewGrantOp } from './routes/renew-grant.js';
import { revokeGrantOp } from './routes/revoke-grant.js';

/**
 * The `/v1/grants` routes, each with its access guard (`GRANTORS` change grants and carry
 * approvals, `GRANT_READERS` read them; see access.ts).
 */
export function grantsRoutes(deps: GrantDeps): Router {
  return mount(createRouter(), createGrantOp(deps), listGrantsOp(deps), getGrantOp(deps), amendGrantOp(deps), revokeGrantOp(deps), approveGrantOp(deps), renewGrantOp(deps));
}
