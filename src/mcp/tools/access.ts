/**
 * The access-request tools, listed to every group: `request_access` asks an operator for a
 * capability the group lacks (or to extend one of its active grants), `get_access_request` reads
 * the outcome. Each is one signed request (`POST /v1/grant-requests`, `GET /v1/grant-requests/{id}`);
 * every rule (the group's ceiling, the 7-day bound, who may decide, the pending TTL) is the
 * broker's, and its refusals come back as error results that lead with the code and what to do.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GrantRequestDetailSchema, GrantRequestSchema } from '../../modules/grant-requests/routes/schemas.js';
import { READ, WRITE, zodTool, type ToolFamily } from '../registry.js';

const Patterns = z.array(z.string().min(1).max(256)).min(1).max(100);

/** The access-request tools. */
export const accessTools: ToolFamily = (ctx) => [
  zodTool({
    name: 'request_access',
    description:
      'Ask an operator for a capability this group lacks (or to extend one of its active grants with `renews`). It is stored as a pending request: it grants nothing until an operator approves it, never above the group’s ceiling, and expires if nobody decides (24 h by default). Name the provider, the actions, the resources, the level, how long you need it (ttl_s, at most 7 days) and why (justification: operators read it; never put a secret in it). Follow it with get_access_request; once approved the typed tools appear (notifications/tools/list_changed). L3 grants also wait for two approvers.',
    input: z.strictObject({
      provider: z.string().optional().describe('The provider, e.g. `github` (not with renews)'),
      level: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional().describe('1 read, 2 write, 3 production (not with renews)'),
      allowed_actions: Patterns.optional().describe('Action ids such as `github.get_repo`, or patterns ending in `*` (not with renews)'),
      resources: Patterns.optional().describe('Resource patterns such as `acme/api` or `acme/*` (not with renews)'),
      ttl_s: z.number().int().positive().max(604800).describe('How long the grant should last once active, in seconds'),
      justification: z.string().min(1).max(900).describe('Why this group needs it (the task, the goal)'),
      renews: z.string().optional().describe('An active grant id of this group to extend with the same terms'),
      request_id: z.string().regex(/^[A-Za-z0-9._:-]{1,255}$/).optional().describe('Idempotency key; reuse it to retry the same request safely'),
    }),
    output: GrantRequestSchema,
    annotations: WRITE,
    run: ({ request_id, ...request }) => {
      const key = request_id ?? randomUUID();
      return ctx.answer(ctx.client.requestAccess(request, key), key);
    },
  }),
  zodTool({
    name: 'get_access_request',
    description: 'One of this group’s access requests: its status (pending, approved, denied, expired), the decision’s reason, and the grant it created with that grant’s status now.',
    input: z.strictObject({ id: z.string().min(1).max(64).describe('The request id, `grq_…`') }),
    output: GrantRequestDetailSchema,
    annotations: READ,
    run: ({ id }) => ctx.answer(ctx.client.accessRequest(id)),
  }),
];
