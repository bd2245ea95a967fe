import { Hono } from 'hono';
import { requirePrincipal } from '../../platform/http/guard.js';
import type { GrantDeps } from './service.js';
import type { AppEnv } from '../../platform/http/env.js';
import { GRANT_READERS, GRANTORS } from './access.js';
import { amendGrantRoute } from './routes/amend-grant.js';
import { approveGrantRoute } from './routes/approve-grant.js';
import { createGrantRoute } from './routes/create-grant.js';
import { listGrantsRoute } from './routes/list-grants.js';
import { revokeGrantRoute } from './routes/revoke-grant.js';
import { showGrantRoute } from './routes/get-grant.js';

/** The `/v1/grants` routes (issue 4, "Routes and people"), each with its access guard. */
export function grantsRoutes(deps: GrantDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post('/', requirePrincipal(GRANTORS), createGrantRoute(deps));
  r.get('/', requirePrincipal(GRANT_READERS), listGrantsRoute(deps));
  r.get('/:id', requirePrincipal(GRANT_READERS), showGrantRoute(deps));
  r.patch('/:id', requirePrincipal(GRANTORS), amendGrantRoute(deps));
  r.post('/:id/revoke', requirePrincipal(GRANTORS), revokeGrantRoute(deps));
  r.post('/:id/approvals', requirePrincipal(GRANTORS), approveGrantRoute(deps));
  return r;
}
