import { z } from 'zod';
import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { ActionDefinition } from '../../../providers/contract.js';
import { capabilitiesFor, type Capability } from '../capabilities.js';
import type { CallService, CallServiceDeps } from '../service.js';
import { CapabilitiesSchema } from './schemas.js';

/** The JSON Schema of each action's params, made once per action definition. */
const paramsSchemas = new WeakMap<ActionDefinition<any, unknown>, Record<string, unknown>>();

/**
 * An action's params as JSON Schema (draft 2020-12), from its zod schema with zod's own
 * `z.toJSONSchema` in input form (members with a default are optional; what zod cannot express,
 * such as a refinement's predicate, is left out: the decision path still checks it, step 2).
 * Memoized per action definition; an action without a catalog entry gets `{}` (any value).
 */
function paramsSchemaOf(action: ActionDefinition<any, unknown> | undefined): Record<string, unknown> {
  if (action === undefined) return {};
  let schema = paramsSchemas.get(action);
  if (schema === undefined) {
    schema = z.toJSONSchema(action.params, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    paramsSchemas.set(action, schema);
  }
  return schema;
}

/**
 * `GET /v1/ext/capabilities`: for every registered action, whether the calling group may call it
 * now and, if not, the code and a sentence (see `Capability`; an action an active kill switch
 * matches is `disabled_by_operator`), with the JSON Schema of its params
 * (`params_schema`), plus the group's pending calls: `{group, pending, max_pending, actions}`.
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
      responses: { 200: json('Every action as the group sees it, with its params schema, and its pending calls.', CapabilitiesSchema), ...problems() },
    }),
    handler: async (c) => {
      const p = c.get('principal');
      if (p.type !== 'group') throw new ApiError('forbidden', 'Capabilities are per agent group; sign the request as a group.');
      // The operators' kill switches, read now (a store that cannot be read fails the request, 503).
      const switches = deps.stores.switches ? await deps.stores.switches.activeNow() : [];
      const actions = capabilitiesFor(deps, p.group, switches).map((cap: Capability) => ({ ...cap, params_schema: paramsSchemaOf(deps.catalog.get(cap.action)?.action) }));
      return c.json({ group: p.group, pending: service.pendingFor(p.group), max_pending: deps.config.maxPendingPerGroup, actions });
    },
  };
}
