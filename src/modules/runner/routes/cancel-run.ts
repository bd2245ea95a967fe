import { z } from 'zod';
import { BEARER, createRoute, json, jsonRequest, problems, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { principalName, requireRole } from '../../../platform/http/guard.js';
import type { Runner } from '../service.js';
import { runJson } from '../views.js';
import { RunIdParams, RunSchema } from './schemas.js';

/** The body of a cancel: an optional reason, recorded on the `run.cancelled` audit row. */
const CancelBody = z.strictObject({ reason: z.string().trim().min(1).max(2000).optional() });

/**
 * `POST /v1/runs/{id}/cancel` `{reason?}` (operators): kills a running run's process group, or cancels a run
 * only claimed; audited `run.cancelled`. 404 `not_found`; 409 `illegal_transition` when it ended.
 */
export function cancelRunOp(deps: { runner: Runner }): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/runs/{id}/cancel',
      operationId: 'cancelRun',
      tags: ['runner'],
      summary: 'Cancel a run',
      security: [BEARER],
      request: { params: RunIdParams, body: jsonRequest(CancelBody) },
      responses: { 200: json('The run, cancelled.', RunSchema), ...problems('malformed_json', 'validation_failed', 'not_found', 'illegal_transition') },
    }),
    guard: requireRole('operator'),
    handler: async (c) => {
      const body = await jsonBody(c, CancelBody);
      return c.json(runJson(await deps.runner.cancel(c.req.param('id')!, principalName(c.get('principal')), body.reason)));
    },
  };
}
