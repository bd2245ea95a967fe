import { Hono } from 'hono';
import { requireRole } from '../../platform/http/guard.js';
import type { AppEnv } from '../../platform/http/env.js';
import { listAuditRoute } from './routes/list-audit.js';
import type { AuditDeps } from './store.js';

/** The `/v1/audit` routes: reading the trail, for operator and auditor tokens only (never agent groups). */
export function auditRoutes(deps: AuditDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.get('/', requireRole('operator', 'auditor'), listAuditRoute(deps));
  return r;
}
