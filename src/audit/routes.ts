import { Hono } from 'hono';
import { requireRole } from '../auth/middleware.js';
import type { Deps } from '../deps.js';
import type { AppEnv } from '../http/env.js';
import { listAuditRoute } from './list.js';

/** The `/v1/audit` routes: reading the trail, for operator and auditor tokens only (never agent groups). */
export function auditRoutes(deps: Deps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.get('/', requireRole('operator', 'auditor'), listAuditRoute(deps));
  return r;
}
