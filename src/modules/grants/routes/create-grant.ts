import type { Context } from 'hono';
import { principalName } from '../../../platform/http/guard.js';
import type { GrantDeps } from '../service.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { createGrant } from '../service.js';
import { CreateGrantBody } from '../terms.js';

/**
 * `POST /v1/grants` (operators, `main`): body {@link CreateGrantBody}. 201 with the grant and
 * `Location`; L3 grants start `pending_approval`. Idempotent on `Idempotency-Key`: a repeat with
 * the same body answers the same grant with `Idempotent-Replayed: true`.
 * Errors: 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long` |
 * `idempotency_key_reused`, 403 `forbidden`.
 */
export function createGrantRoute(deps: GrantDeps) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const input = await jsonBody(c, CreateGrantBody);
    const requestHash = bodyHash(c);
    const { grant, replayed } = await createGrant(deps, input, principalName(c.get('principal')), { key: c.get('idempotencyKey'), requestHash });
    if (replayed) c.header('Idempotent-Replayed', 'true');
    c.header('Location', `/v1/grants/${grant.id}`);
    return c.json(grant, 201);
  };
}
