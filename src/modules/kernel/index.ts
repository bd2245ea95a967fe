import { Hono } from 'hono';
import type { AppEnv } from '../../platform/http/env.js';
import { ackDispatchRoute } from './routes/ack-dispatch.js';
import { createTaskRoute } from './routes/create-task.js';
import { gateDecisionRoute } from './routes/gate-decision.js';
import { getTaskRoute } from './routes/get-task.js';
import { listDispatchesRoute } from './routes/list-dispatches.js';
import { listTasksRoute } from './routes/list-tasks.js';
import { overrideGateRoute } from './routes/override-gate.js';
import { taskContextRoute } from './routes/task-context.js';
import { transitionTaskRoute } from './routes/transition-task.js';
import { updateDodRoute } from './routes/update-dod.js';
import { updateTaskRoute } from './routes/update-task.js';
import type { Db } from '../../platform/db/open.js';
import type { KernelDeps } from './service/common.js';

/**
 * The kernel's signed routes (issue 3): `/v1/tasks…` and `/v1/dispatches…`. Mounted under the
 * app's `/v1/*` group-signature middleware.
 */
export function kernelRoutes(deps: KernelDeps & { db: Db }): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .post('/v1/tasks', createTaskRoute(deps))
    .get('/v1/tasks', listTasksRoute(deps))
    .get('/v1/tasks/:id', getTaskRoute(deps))
    .patch('/v1/tasks/:id', updateTaskRoute(deps))
    .get('/v1/tasks/:id/context', taskContextRoute(deps))
    .post('/v1/tasks/:id/transition', transitionTaskRoute(deps))
    .post('/v1/tasks/:id/gate', gateDecisionRoute(deps))
    .post('/v1/tasks/:id/override', overrideGateRoute(deps))
    .patch('/v1/tasks/:id/dod', updateDodRoute(deps))
    .get('/v1/dispatches', listDispatchesRoute(deps))
    .post('/v1/dispatches/:id/ack', ackDispatchRoute(deps));
}
