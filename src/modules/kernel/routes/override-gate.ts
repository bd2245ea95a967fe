import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../platform/http/env.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { actorOf, ReasonText, taskIdParam } from '../http.js';
import { etagOf, taskJson } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { overrideGate } from '../service/gates.js';

/** The body of `POST /v1/tasks/{id}/override`. */
export const OverrideBody = z.strictObject({
  reason: ReasonText,
  risk_acceptance: ReasonText,
});

/**
 * `POST /v1/tasks/{id}/override` with `If-Match` (main only): sets `gate_status=overridden` and
 * creates a P0 follow-up task in the same transaction. 200 `{task, follow_up}`, `ETag` of the task.
 * Errors: 404, 428, 412, 403 `forbidden`, 403 `separation_of_powers`, 409 `conflict`, 422.
 */
export function overrideGateRoute(deps: KernelDeps) {
  return async (c: Context<AppEnv>) => {
    const actor = actorOf(c);
    const id = taskIdParam(c);
    const body = await jsonBody(c, OverrideBody);
    const { task, followUp } = await overrideGate(deps, id, actor, c.req.header('if-match'), { reason: body.reason, riskAcceptance: body.risk_acceptance });
    c.header('ETag', etagOf(task.version));
    return c.json({ task: taskJson(task), follow_up: taskJson(followUp) });
  };
}
