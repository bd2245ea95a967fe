import { z } from 'zod';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { pageOf, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { SWITCH_READERS } from '../access.js';
import { switchJson, type SwitchDeps } from '../service.js';
import { SwitchId, SwitchSchema } from './schemas.js';

const ListSwitchesQuery = z.strictObject({
  active: z.enum(['true', 'false']).optional().describe('`true`: only the switches not cleared.'),
  ...pageQuery(200, 50, SwitchId),
});

/**
 * `GET /v1/switches?active=&limit=&cursor=` (operators, auditors): kill switches in id (setting)
 * order, `{data: KillSwitch[], has_more, next_cursor}`. 422 `validation_failed`.
 */
export function listSwitchesOp(deps: SwitchDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/switches',
      operationId: 'listSwitches',
      tags: ['switches'],
      summary: 'List kill switches',
      security: [BEARER],
      request: { query: ListSwitchesQuery },
      responses: { 200: json('A page of kill switches, oldest first.', pageOf(SwitchSchema)), ...problems('validation_failed') },
    }),
    guard: requireRole(...SWITCH_READERS),
    handler: async (c) => {
      const q = queryParams(c, ListSwitchesQuery);
      const { rows, more } = await deps.stores.switches.list({ limit: q.limit, ...(q.active === 'true' ? { active: true } : {}), ...(q.cursor ? { after: q.cursor } : {}) });
      return c.json({ data: rows.map(switchJson), has_more: more, next_cursor: more ? rows.at(-1)!.id : null });
    },
  };
}
