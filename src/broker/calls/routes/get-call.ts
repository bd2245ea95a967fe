import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../../http/env.js';
import { ApiError } from '../../../http/problem.js';
import { queryParams } from '../../../http/validate.js';
import type { CallStore } from '../store.js';
import { callView } from '../views.js';

const Query = z.object({ group: z.string().min(1).max(63).optional() });

/**
 * `GET /v1/ext/calls/{request_id}`: one call with its receipt and stored answer (`CallView`).
 * A group sees only its own calls: anyone else's answers 404 `not_found`, exactly like a call that
 * does not exist. Operator and auditor tokens name the group: `?group=developer`.
 */
export function getCallRoute(store: CallStore) {
  return (c: Context<AppEnv>): Response => {
    const p = c.get('principal');
    const requestId = c.req.param('request_id')!;
    const group = p.type === 'group' ? p.group : queryParams(c, Query).group;
    if (group === undefined) throw new ApiError('validation_failed', 'A token reading a call names its group: ?group=<group>.', { issues: [] });
    const row = store.find(group, requestId);
    if (!row) throw new ApiError('not_found', `No call ${requestId} of group ${group}.`);
    return c.json(callView(row));
  };
}
