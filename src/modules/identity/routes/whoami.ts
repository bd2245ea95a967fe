import type { Context } from 'hono';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';

/**
 * `GET /v1/whoami`: who the signature says you are.
 * 200 `{group, key_version, keyid}` for a group; 403 `forbidden` for any other principal.
 */
export function whoamiRoute(c: Context<AppEnv>): Response {
  const p = c.get('principal');
  if (p.type !== 'group') throw new ApiError('forbidden', 'whoami answers signed group requests only.');
  return c.json({ group: p.group, key_version: p.keyVersion, keyid: p.keyid });
}
