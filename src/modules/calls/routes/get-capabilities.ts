import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { ApiError } from '../../../platform/http/problem.js';
import { capabilitiesFor, type Capability } from '../capabilities.js';
import type { CallService, CallServiceDeps } from '../service.js';
import { CapabilitiesSchema } from './schemas.js';

/**
 * `GET /v1/ext/capabilities`: for every registered action, whether the calling group may call it
 * now and, if not, the code and a sentence (see `Capability`), plus the group's pending calls:
 * `{group, pending, max_pending, actions: Capability[]}`.
 */
export function getCapabilitiesOp(deps: CallServiceDeps, service: CallService): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/ext/capabilities',
      operationId: 'getCapabilities',
      tags: ['calls'],
      summary: 'What the calling group may call now',
      security: [SIGNED],
      responses: { 200: json('Every action as the group sees it, and its pending calls.', CapabilitiesSchema), ...problems() },
    }),
    handler: (c) => {
      const p = c.get('principal');
      if (p.type !== 'group') throw new ApiError('forbidden', 'Capabilities are per agent group; sign the request as a group.');
      const actions: Capability[] = capabilitiesFor(deps, p.group);
      return c.json({ group: p.group, pending: service.pendingFor(p.group), max_pending: deps.config.maxPendingPerGroup, actions });
    },
  };
}
