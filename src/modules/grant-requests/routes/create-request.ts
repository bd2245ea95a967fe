import { z } from 'zod';
import { createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, ReplayedHeader, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { requirePrincipal } from '../../../platform/http/guard.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { requesters } from '../access.js';
import { createGrantRequest, type GrantRequestDeps } from '../service.js';
import { CreateGrantRequestBody } from '../terms.js';
import { GrantRequestSchema } from './schemas.js';

/**
 * `POST /v1/grant-requests` (agent groups, RFC 9421-signed; the signer is the requesting group):
 * body {@link CreateGrantRequestBody}. 201 with the pending request and `Location`. Idempotent on
 * `Idempotency-Key`: a repeat with the same body answers the same request with
 * `Idempotent-Replayed: true`. A justification holding a secret is 422 `secret_in_input`.
 * Errors: 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long` |
 * `idempotency_key_reused`, 409 `conflict` (the grant to renew is not active), 429 `backpressure`.
 */
export function createGrantRequestOp(deps: GrantRequestDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grant-requests',
      operationId: 'createGrantRequest',
      tags: ['grants'],
      summary: 'Ask for a capability (or a renewal)',
      description: 'A pending request an operator approves (creating the grant) or denies. It grants nothing by itself and expires after `BROKER_GRANT_REQUEST_TTL_S`.',
      security: [SIGNED],
      request: { headers: IdempotencyKeyHeader, body: jsonRequest(CreateGrantRequestBody) },
      responses: {
        201: json('The pending request.', GrantRequestSchema, ReplayedHeader.extend({ Location: z.string().describe('`/v1/grant-requests/{id}`') })),
        ...problems(...WRITE_ERRORS, 'level_above_ceiling', 'expiry_too_long', 'idempotency_key_reused', 'conflict', 'backpressure'),
      },
    }),
    guard: requirePrincipal(requesters(deps.groups)),
    handler: async (c) => {
      const input = await jsonBody(c, CreateGrantRequestBody);
      const principal = c.get('principal');
      const group = principal.type === 'group' ? principal.group : '';
      const { request, replayed } = await createGrantRequest(deps, input, group, { key: c.get('idempotencyKey'), requestHash: bodyHash(c) });
      if (replayed) c.header('Idempotent-Replayed', 'true');
      c.header('Location', `/v1/grant-requests/${request.id}`);
      return c.json(request, 201);
    },
  };
}
