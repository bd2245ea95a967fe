import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, ReasonText, taskIdParam } from '../http.js';
import { etagOf, taskJson } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { overrideGate } from '../service/gates.js';
import { ETagHeader, TaskIdParams, TaskMutationHeaders, TaskSchema } from './schemas.js';

/** The body of `POST /v1/tasks/{id}/override`. */
export const OverrideBody = z.strictObject({
  reason: ReasonText,
  risk_acceptance: ReasonText,
});

/** What an override answers: the task and the P0 follow-up it created. */
const OverrideResult = z.strictObject({ task: TaskSchema, follow_up: TaskSchema }).meta({ id: 'OverrideResult' });

/**
 * `POST /v1/tasks/{id}/override` with `If-Match` (main only): sets `gate_status=overridden` and
 * creates a P0 follow-up task in the same transaction. 200 `{task, follow_up}`, `ETag` of the task.
 * Errors: 404, 428, 412, 403 `forbidden`, 403 `separation_of_powers`, 409 `conflict`, 422.
 */
export function overrideGateOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/tasks/{id}/override',
      operationId: 'overrideGate',
      tags: ['kernel'],
      summary: "Override a task's gate (main only)",
      security: [SIGNED],
      request: { params: TaskIdParams, headers: TaskMutationHeaders, body: jsonRequest(OverrideBody) },
      responses: {
        200: json('The task and its P0 follow-up.', OverrideResult, ETagHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'precondition_required', 'precondition_failed', 'separation_of_powers', 'conflict'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const id = taskIdParam(c);
      const body = await jsonBody(c, OverrideBody);
      const { task, followUp } = await overrideGate(deps, id, actor, c.req.header('if-match'), { reason: body.reason, riskAcceptance: body.risk_acceptance });
      c.header('ETag', etagOf(task.version));
      return c.json({ task: taskJson(task), follow_up: taskJson(followUp) });
    },
  };
}
