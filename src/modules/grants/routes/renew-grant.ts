import { z } from 'zod';
import { BEARER, createRoute, IdempotencyKeyHeader, json, jsonRequest, problems, ReplayedHeader, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { principalName, requirePrincipal } from '../../../platform/http/guard.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { GRANTORS } from '../access.js';
import { renewGrant, RenewGrantBody } from '../renewal.js';
import type { GrantDeps } from '../service.js';
import { GrantIdParams, GrantSchema } from './schemas.js';

/** One renewal (`RenewalRecord` in renewal.ts). */
const RenewalSchema = z
  .strictObject({
    id: z.string().describe('`rnw_<ULID>`'),
    status: z.enum(['applied', 'pending_approval', 'superseded', 'rejected', 'expired']),
    requested_by: z.string(),
    reason: z.string(),
    previous_expires_at: z.iso.datetime().nullable(),
    expires_at: z.iso.datetime(),
    digest: z.string().describe('sha256 of the terms with the new expiry: what L3 approvers sign.'),
    created_at: z.iso.datetime(),
    pending_expires_at: z.iso.datetime().nullable(),
    applied_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Renewal' });

/** What a renewal did, the renewal and the grant after it. */
const RenewalResult = z
  .strictObject({ outcome: z.enum(['renewed', 'pending_approval']), renewal: RenewalSchema, grant: GrantSchema })
  .meta({ id: 'RenewalResult' });

/**
 * `POST /v1/grants/{id}/renew` (operators, `main`): body `{expires_at | ttl_s, reason}`. 200
 * `{outcome, renewal, grant}`: an L1/L2 grant is `renewed` at once; an L3 renewal is
 * `pending_approval` until two approvers sign its digest (`POST /v1/grants/{id}/approvals`), and
 * the grant keeps its old expiry until then. Idempotent on `Idempotency-Key` (a repeat answers the
 * same renewal with `Idempotent-Replayed: true`).
 * Errors: 404 `not_found`, 409 `grant_not_renewable` (revoked, expired, rejected, pending),
 * 422 `expiry_too_long` (beyond 7 days from now) | `validation_failed` | `idempotency_key_reused`.
 */
export function renewGrantOp(deps: GrantDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/grants/{id}/renew',
      operationId: 'renewGrant',
      tags: ['grants'],
      summary: 'Extend the expiry of an active grant',
      security: [SIGNED, BEARER],
      request: { params: GrantIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(RenewGrantBody) },
      responses: {
        200: json('The renewal: applied (L1/L2) or waiting for two approvals (L3).', RenewalResult, ReplayedHeader),
        ...problems(...WRITE_ERRORS, 'not_found', 'grant_not_renewable', 'expiry_too_long', 'idempotency_key_reused'),
      },
    }),
    guard: requirePrincipal(GRANTORS),
    handler: async (c) => {
      const input = await jsonBody(c, RenewGrantBody);
      const idem = { key: c.get('idempotencyKey'), requestHash: bodyHash(c) };
      const { replayed, ...result } = await renewGrant(deps, c.req.param('id')!, input, principalName(c.get('principal')), idem);
      if (replayed) c.header('Idempotent-Replayed', 'true');
      return c.json(result);
    },
  };
}
