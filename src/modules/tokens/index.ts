import { Hono } from 'hono';
import type { TokensDeps } from './service.js';
import type { AppEnv } from '../../platform/http/env.js';
import { listRevocationsRoute } from './routes/list-revocations.js';
import { requireRole } from '../../platform/http/guard.js';
import { revokeTokensRoute } from './routes/revoke.js';

/**
 * The `/v1/tokens` routes: operators revoke bearer tokens, operators and auditors read the
 * revocations. Agent groups never reach them (403 `forbidden`).
 */
export function tokenRoutes(deps: TokensDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post('/revocations', requireRole('operator'), revokeTokensRoute(deps));
  r.get('/revocations', requireRole('operator', 'auditor'), listRevocationsRoute(deps));
  return r;
}
