import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { listAuditOp } from './routes/list-audit.js';
import type { AuditDeps } from './store.js';

/** The `/v1/audit` routes: reading the trail, for operator and auditor tokens only (never agent groups). */
export function auditRoutes(deps: AuditDeps): Router {
  return mount(createRouter(), listAuditOp(deps));
}
