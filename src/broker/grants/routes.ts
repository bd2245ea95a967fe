import { Hono } from 'hono';
import { requirePrincipal } from '../../auth/middleware.js';
import type { Deps } from '../../deps.js';
import type { AppEnv } from '../../http/env.js';
import { GRANT_READERS, GRANTORS } from './access.js';
import { amendGrantRoute } from './amend.js';
import { approveGrantRoute } from './approve.js';
import { createGrantRoute } from './create.js';
import { listGrantsRoute } from './list.js';
import { revokeGrantRoute } from './revoke.js';
import { showGrantRoute } from './show.js';

/** The `/v1/grants` routes (issue 4, "Routes and people"), each with its access guard. */
export function grantsRoutes(deps: Deps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post('/', requirePrincipal(GRANTORS), createGrantRoute(deps));
  r.get('/', requirePrincipal(GRANT_READERS), listGrantsRoute(deps));
  r.get('/:id', requirePrincipal(GRANT_READERS), showGrantRoute(deps));
  r.patch('/:id', requirePrincipal(GRANTORS), amendGrantRoute(deps));
  r.post('/:id/revoke', requirePrincipal(GRANTORS), revokeGrantRoute(deps));
  r.post('/:id/approvals', requirePrincipal(GRANTORS), approveGrantRoute(deps));
  return r;
}
