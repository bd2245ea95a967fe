import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, ReplayedHeader, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { z } from 'zod';
import { GRANTORS } from '../access.js';
import { createGrant, type GrantDeps } from '../service.js';
import { CreateGrantBody } from '../terms.js';
import { GrantSchema } from './schemas.js';

/**
 * `POST /v1/grants` (operators, `main`): body {@link CreateGrantBody}. 201 with the grant and
 * `Location`; L3 grants start `pending_approval`. Idempotent on `Idempotency-Key`: a repeat with
 * the same body answers the same grant with `Idempotent-Replayed: true`.
 * Errors: 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long` |
 * `idempotency_key_reused`, 403 `forbidden`.
 */
export function createGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grants',
      operationId: 'createGrant',
      tags: ['grants'],
      summary: 'Create a grant',
      security: [SIGNED, BEARER],
      request: { headers: IdempotencyKeyHeader, body: jsonRequest(CreateGrantBody) },
      responses: {
        201: json('The grant (L3 grants start pending_approval).', GrantSchema, ReplayedHeader.extend({ Location: z.string().describe('`/v1/grants/{id}`') })),
        ...problems(...WRITE_ERRORS, 'level_above_ceiling', 'expiry_too_long', 'idempotency_key_reused'),
      },
    }),
    guard: requirePrincipal(GRANTORS),
    handler: async (c) => {
      const input = await jsonBody(c, CreateGrantBody);
      const requestHash = bodyHash(c);
      const { grant, replayed } = await createGrant(deps, input, principalName(c.get('principal')), { key: c.get('idempotencyKey'), requestHash });
      if (replayed) c.header('Idempotent-Replayed', 'true');
      c.header('Location', `/v1/grants/${grant.id}`);
      return c.json(grant, 201);
    },
  };
}
