import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requireRole } from '../../../platform/http/guard.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { SWITCH_CHANGERS } from '../access.js';
import { clearSwitch, type SwitchDeps } from '../service.js';
import { ClearSwitchBody, SwitchIdParams, SwitchSchema } from './schemas.js';

/**
 * `POST /v1/switches/{id}/clear` `{reason}` (operators): clears an active switch, audited
 * `switch.cleared`; the calls it stopped run again from the next request. 404 `not_found`;
 * 409 `conflict` when it is cleared already.
 */
export function clearSwitchOp(deps: SwitchDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/switches/{id}/clear',
      operationId: 'clearSwitch',
      tags: ['switches'],
      summary: 'Clear a kill switch',
      security: [BEARER],
      request: { headers: IdempotencyKeyHeader, params: SwitchIdParams, body: jsonRequest(ClearSwitchBody) },
      responses: { 200: json('The switch, cleared.', SwitchSchema), ...problems(...WRITE_ERRORS, 'not_found', 'conflict') },
    }),
    guard: requireRole(...SWITCH_CHANGERS),
    handler: async (c) => {
      const body = await jsonBody(c, ClearSwitchBody);
      return c.json(await clearSwitch(deps, c.req.param('id')!, principalName(c.get('principal')), body.reason));
    },
  };
}
