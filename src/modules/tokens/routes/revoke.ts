import type { Context } from 'hono';
import type { TokensDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { principalName } from '../../../platform/http/guard.js';
import { RevokeTokensInput } from '../revocations.js';

/**
 * `POST /v1/tokens/revocations` (operator tokens only): body {@link RevokeTokensInput},
 * `{jti, reason}` or `{subject, role?, reason}`. 201 with the `TokenRevocation`; the revoked
 * tokens are refused (401) from the next request on, also the caller's own (break-glass).
 * Idempotent on `Idempotency-Key`: a repeat with the same body answers the same revocation with
 * `Idempotent-Replayed: true` and writes no second row. 200 with the existing revocation when the
 * tokens are already revoked (nothing written).
 * Errors: 400 `malformed_json`, 422 `validation_failed` | `idempotency_key_reused`, 403 `forbidden`.
 */
export function revokeTokensRoute(deps: TokensDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const input = await jsonBody(c, RevokeTokensInput);
    const requestHash = bodyHash(c);
    const { revocation, outcome } = await deps.tokens.revocations.revoke(input, principalName(c.get('principal')), { key: c.get('idempotencyKey'), requestHash });
    if (outcome === 'replayed') c.header('Idempotent-Replayed', 'true');
    return c.json(revocation, outcome === 'already_revoked' ? 200 : 201);
  };
}
