import type { Context } from 'hono';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';
import { capabilitiesFor, type Capability } from '../capabilities.js';
import type { CallService, CallServiceDeps } from '../service.js';

/**
 * `GET /v1/ext/capabilities`: for every registered action, whether the calling group may call it
 * now and, if not, the code and a sentence (see `Capability`), plus the group's pending calls:
 * `{group, pending, max_pending, actions: Capability[]}`.
 */
export function getCapabilitiesRoute(deps: CallServiceDeps, service: CallService) {
  return (c: Context<AppEnv>): Response => {
    const p = c.get('principal');
    if (p.type !== 'group') throw new ApiError('forbidden', 'Capabilities are per agent group; sign the request as a group.');
    const actions: Capability[] = capabilitiesFor(deps, p.group);
    return c.json({ group: p.group, pending: service.pendingFor(p.group), max_pending: deps.config.maxPendingPerGroup, actions });
  };
}
