import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { cancelRunOp } from './routes/cancel-run.js';
import { getRunOp } from './routes/get-run.js';
import { listRunsOp } from './routes/list-runs.js';
import type { Runner } from './service.js';
import type { RunStore } from './store.js';

/** The runner's routes, for operator and auditor tokens: `GET /v1/runs`, `GET /v1/runs/{id}`, `POST /v1/runs/{id}/cancel`. */
export function runnerRoutes(deps: { runner: Runner; stores: { runs: RunStore } }): Router {
  return mount(createRouter(), listRunsOp({ runs: deps.stores.runs }), getRunOp({ runs: deps.stores.runs }), cancelRunOp(deps));
}
