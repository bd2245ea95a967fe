import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { RunStore } from '../store.js';
import { runJson } from '../views.js';
import { RunIdParams, RunSchema } from './schemas.js';

/** `GET /v1/runs/{id}` (operators, auditors): one run. 404 `not_found`. */
export function getRunOp(deps: { runs: RunStore }): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/runs/{id}',
      operationId: 'getRun',
      tags: ['runner'],
      summary: 'One run',
      security: [BEARER],
      request: { params: RunIdParams },
      responses: { 200: json('The run.', RunSchema), ...problems('not_found') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => {
      const id = c.req.param('id')!;
      const run = await deps.runs.find(id);
      if (!run) throw new ApiError('not_found', `No run ${id}.`);
      return c.json(runJson(run));
    },
  };
}
