import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { actorOf, ReasonText, sendTask, taskIdParam } from '../http.js';
import { TASK_STATES } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { transitionTask } from '../service/transition.js';
import { ETagHeader, TaskIdParams, TaskMutationHeaders, TaskSchema } from './schemas.js';

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
export function transitionTaskOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/tasks/{id}/transition',
      operationId: 'transitionTask',
      tags: ['kernel'],
      summary: 'Move a task along the state machine',
      security: [SIGNED],
      request: { params: TaskIdParams, headers: TaskMutationHeaders, body: jsonRequest(TransitionBody) },
      responses: {
        200: json('The task in its new state.', TaskSchema, ETagHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'precondition_required', 'precondition_failed', 'illegal_transition', 'separation_of_powers', 'done_requirements_unmet'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const id = taskIdParam(c);
      const body = await jsonBody(c, TransitionBody);
      const row = await transitionTask(deps, id, actor, c.req.header('if-match'), {
        to: body.to,
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
        ...(body.assigned_group !== undefined ? { assignedGroup: body.assigned_group } : {}),
      });
      return sendTask(c, row);
    },
  };
}
