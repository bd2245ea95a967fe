import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, ReasonText, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { decideGate } from '../service/gates.js';
import { ETagHeader, TaskIdParams, TaskMutationHeaders, TaskSchema } from './schemas.js';

/** The body of `POST /v1/tasks/{id}/gate`. */
export const GateDecisionBody = z.strictObject({
  decision: z.enum(['approve', 'request_changes']),
  reason: ReasonText.optional(),
});

/**
 * `POST /v1/tasks/{id}/gate` with `If-Match`: the gate's approver approves, or requests changes
 * (the task goes APPROVAL → REVIEW). 200 task + new `ETag`.
 * Errors: 404, 428, 412, 403 `separation_of_powers`, 403 `forbidden`, 409 `conflict`, 422.
 */
export function gateDecisionOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/tasks/{id}/gate',
      operationId: 'decideGate',
      tags: ['kernel'],
      summary: "Approve a task's gate, or request changes",
      security: [SIGNED],
      request: { params: TaskIdParams, headers: TaskMutationHeaders, body: jsonRequest(GateDecisionBody) },
      responses: {
        200: json('The task after the decision.', TaskSchema, ETagHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'precondition_required', 'precondition_failed', 'separation_of_powers', 'conflict'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const id = taskIdParam(c);
      const body = await jsonBody(c, GateDecisionBody);
      const row = await decideGate(deps, id, actor, c.req.header('if-match'), {
        decision: body.decision,
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
      });
      return sendTask(c, row);
    },
  };
}
