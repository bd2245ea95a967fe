import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { actorOf, ReasonText, sendTask, taskIdParam } from '../http.js';
import { TASK_STATES } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { transitionTask } from '../service/transition.js';

/** The body of `POST /v1/tasks/{id}/transition`. */
export const TransitionBody = z.strictObject({
  to: z.enum(TASK_STATES),
  /** Required when `to` is BLOCKED. */
  reason: ReasonText.optional(),
  /**
   * main only: (re)assigns the task; required to reach READY when it has no group yet. Never the
   * approver of the task's gate (403 `separation_of_powers`).
   */
  assigned_group: GroupName.optional(),
});

/**
 * `POST /v1/tasks/{id}/transition` with `If-Match: "v<version>"`: moves the task along the state
 * machine (src/modules/kernel/machine.ts). 200 task + new `ETag`.
 * Errors: 404, 428 `precondition_required`, 412 `precondition_failed`, 409 `illegal_transition`
 * (with `allowed`), 403 `forbidden`, 403 `separation_of_powers` (`assigned_group` is the approver
 * of the task's gate; with `gate`, `approver_group`, `assigned_group`), 409
 * `done_requirements_unmet` (with `missing`), 422.
 */
export function transitionTaskRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    const actor = actorOf(c);
    const id = taskIdParam(c);
    const body = await jsonBody(c, TransitionBody);
    const row = await transitionTask(deps, id, actor, c.req.header('if-match'), {
      to: body.to,
      ...(body.reason !== undefined ? { reason: body.reason } : {}),
      ...(body.assigned_group !== undefined ? { assignedGroup: body.assigned_group } : {}),
    });
    return sendTask(c, row);
  };
}
