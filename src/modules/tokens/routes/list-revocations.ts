import type { Context } from 'hono';
import { z } from 'zod';
import type { TokensDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { queryParams } from '../../../platform/http/validate.js';
import { Jti } from '../revocations.js';
import { Subject } from '../types.js';

const ListQuery = z.strictObject({
  jti: Jti.optional(),
  subject: Subject.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The previous page's `next_cursor`. */
  starting_after: z.string().min(1).max(64).optional(),
});

/**
 * `GET /v1/tokens/revocations?jti=&subject=&limit=&starting_after=` (operator and auditor tokens):
 * token revocations oldest first. 200 `{data: [TokenRevocation], has_more, next_cursor}` (pass
 * `next_cursor` as `starting_after` for the next page).
 * Errors: 422 `validation_failed`, 403 `forbidden`.
 */
export function listRevocationsRoute(deps: TokensDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const q = queryParams(c, ListQuery);
    const { items, nextCursor } = await deps.tokens.revocations.list({ jti: q.jti, subject: q.subject, limit: q.limit, after: q.starting_after });
    return c.json({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
  };
}
