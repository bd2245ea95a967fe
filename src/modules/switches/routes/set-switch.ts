import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, ReplayedHeader, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requireRole } from '../../../platform/http/guard.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { SWITCH_CHANGERS } from '../access.js';
import { setSwitch, type SwitchDeps } from '../service.js';
import { SetSwitchBody, SwitchSchema } from './schemas.js';

/**
 * `POST /v1/switches` `{scope, target?, reason}` (operators): sets a kill switch, audited
 * `switch.set`; calls it matches are refused with 503 `disabled_by_operator` from the next request.
 * 201 with the switch and `Location`. Idempotent on `Idempotency-Key` (`Idempotent-Replayed: true`).
 * Errors: 422 `validation_failed` | `idempotency_key_reused`.
 */
export function setSwitchOp(deps: SwitchDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/switches',
      operationId: 'setSwitch',
      tags: ['switches'],
      summary: 'Switch off external calls (all, a group, a provider or an action)',
      security: [BEARER],
      request: { headers: IdempotencyKeyHeader, body: jsonRequest(SetSwitchBody) },
      responses: {
        201: json('The switch, active.', SwitchSchema, ReplayedHeader.extend({ Location: z.string().describe('`/v1/switches/{id}`') })),
        ...problems(...WRITE_ERRORS, 'idempotency_key_reused'),
      },
    }),
    guard: requireRole(...SWITCH_CHANGERS),
    handler: async (c) => {
      const input = await jsonBody(c, SetSwitchBody);
      const { switch: sw, replayed } = await setSwitch(deps, input, principalName(c.get('principal')), { key: c.get('idempotencyKey'), requestHash: bodyHash(c) });
      if (replayed) c.header('Idempotent-Replayed', 'true');
      c.header('Location', `/v1/switches/${sw.id}`);
      return c.json(sw, 201);
    },
  };
}
