import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, ReasonText, sendTask, taskIdParam } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { decideGate } from '../service/gates.js';

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
export function gateDecisionRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    const actor = actorOf(c);
    const id = taskIdParam(c);
    const body = await jsonBody(c, GateDecisionBody);
    const row = await decideGate(deps, id, actor, c.req.header('if-match'), {
      decision: body.decision,
      ...(body.reason !== undefined ? { reason: body.reason } : {}),
    });
    return sendTask(c, row);
  };
}
