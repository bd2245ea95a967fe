import { createRouter, mount, type Router } from '../../platform/http/contract.js';
import { ackDispatchOp } from './routes/ack-dispatch.js';
import { createTaskOp } from './routes/create-task.js';
import { gateDecisionOp } from './routes/gate-decision.js';
import { getTaskOp } from './routes/get-task.js';
import { listDispatchesOp } from './routes/list-dispatches.js';
import { listTasksOp } from './routes/list-tasks.js';
import { overrideGateOp } from './routes/override-gate.js';
import { taskContextOp } from './routes/task-context.js';
import { transitionTaskOp } from './routes/transition-task.js';
import { updateDodOp } from './routes/update-dod.js';
import { updateTaskOp } from './routes/update-task.js';
import type { CallStore } from '../calls/store.js';
import type { KernelDeps } from './service/common.js';
import type { RunStore } from '../runner/store.js';

/**
 * The kernel's signed routes: `/v1/tasks…` and `/v1/dispatches…`, for agent groups (the
 * authentication middleware refuses tokens here). Each handler checks what the calling group may
 * do with the task.
 */
export function kernelRoutes(deps: KernelDeps & { stores: { calls: CallStore; runs: RunStore } }): Router {
  return mount(
    createRouter(),
    createTaskOp(deps),
    listTasksOp(deps),
    getTaskOp(deps),
    updateTaskOp(deps),
    taskContextOp(deps),
    transitionTaskOp(deps),
    gateDecisionOp(deps),
    overrideGateOp(deps),
    updateDodOp(deps),
    listDispatchesOp(deps),
    ackDispatchOp(deps),
  );
}
