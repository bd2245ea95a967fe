import { z } from 'zod';
import type { TokensDeps } from '../service.js';
import { BEARER, createRoute, json, problems, type Operation } from '../../../platform/http/contract.js';
import { requireRole } from '../../../platform/http/guard.js';
import { deprecatedAlias, pageOf, pagePosition, pageQuery } from '../../../platform/http/pagination.js';
import { queryParams } from '../../../platform/http/validate.js';
import { Jti } from '../revocations.js';
import { Subject } from '../types.js';
import { RevocationId, TokenRevocationSchema } from './schemas.js';

/** The query of `GET /v1/tokens/revocations`; the cursor is the last revocation's id. */
const ListQuery = z.strictObject({
  jti: Jti.optional(),
  subject: Subject.optional(),
  ...pageQuery(500, 100, RevocationId),
  starting_after: deprecatedAlias(z.string().min(1).max(64).optional(), 'the same as `cursor`.'),
});

/**
 * `GET /v1/tokens/revocations?jti=&subject=&limit=&cursor=` (operator and auditor tokens):
 * token revocations oldest first. 200 `{data: [TokenRevocation], has_more, next_cursor}` (pass
 * `next_cursor` as `cursor`, or as the deprecated `starting_after`, for the next page).
 * Errors: 422 `validation_failed`, 403 `forbidden`.
 */
export function listRevocationsOp(deps: TokensDeps): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/tokens/revocations',
      operationId: 'listTokenRevocations',
      tags: ['tokens'],
      summary: 'List token revocations',
      security: [BEARER],
      request: { query: ListQuery },
      responses: { 200: json('A page of revocations, oldest first.', pageOf(TokenRevocationSchema)), ...problems('validation_failed') },
    }),
    guard: requireRole('operator', 'auditor'),
    handler: async (c) => {
      const q = queryParams(c, ListQuery);
      const after = pagePosition(q.cursor, 'starting_after', q.starting_after);
      const { items, nextCursor } = await deps.tokens.revocations.list({ jti: q.jti, subject: q.subject, limit: q.limit, after });
      return c.json({ data: items, has_more: nextCursor !== null, next_cursor: nextCursor });
    },
  };
}
