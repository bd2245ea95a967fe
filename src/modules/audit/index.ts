import type { Db } from '../../platform/db/open.js';
import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { listAuditOp } from './routes/list-audit.js';

/** The `/v1/audit` routes: reading the trail, for operator and auditor tokens only (never agent groups). */
export function auditRoutes(deps: { db: Db }): Router {
  return mount(createRouter(), listAuditOp(deps));
}
