import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { whoamiOp } from './routes/whoami.js';

/** The identity routes: `GET /v1/whoami` (agent groups ask who their signature says they are). */
export function identityRoutes(): Router {
  return mount(createRouter(), whoamiOp);
}
