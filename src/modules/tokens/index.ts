import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import type { TokensDeps } from './service.js';
import { listRevocationsOp } from './routes/list-revocations.js';
import { revokeTokensOp } from './routes/revoke.js';

/**
 * The `/v1/tokens` routes: operators revoke bearer tokens, operators and auditors read the
 * revocations. Agent groups never reach them (403 `forbidden`).
 */
export function tokenRoutes(deps: TokensDeps): Router {
  return mount(createRouter(), revokeTokensOp(deps), listRevocationsOp(deps));
}
