import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { clearSwitchOp } from './routes/clear-switch.js';
import { listSwitchesOp } from './routes/list-switches.js';
import { setSwitchOp } from './routes/set-switch.js';
import type { SwitchDeps } from './service.js';

/** The `/v1/switches` routes: operators set and clear kill switches; operators and auditors list them. */
export function switchRoutes(deps: SwitchDeps): Router {
  return mount(createRouter(), listSwitchesOp(deps), setSwitchOp(deps), clearSwitchOp(deps));
}
