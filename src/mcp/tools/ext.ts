/**
 * The generic tools of external calls, by the names of the seed's design (`ext_*`), each also
 * answering to its earlier name: `ext_capabilities` (`list_capabilities`), `ext_call`
 * (`call_action`), `ext_get_call` (`get_call`), `ext_list_calls` (`list_calls`). The typed action
 * tools (`actions.ts`) are the better way to call one action; `ext_call` remains for any action
 * by id.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ListCallsQuery } from '../../modules/calls/routes/list-calls.js';
import { CallResultSchema, CallSchema, CallSummarySchema, CapabilitiesSchema } from '../../modules/calls/routes/schemas.js';
import { pageOf } from '../../platform/http/pagination.js';
import { READ, zodTool, type ToolFamily } from '../registry.js';

/** An Idempotency-Key: 1–255 of `[A-Za-z0-9._:-]` (the broker's rule). */
export const RequestId = z.string().regex(/^[A-Za-z0-9._:-]{1,255}$/);

/** The coupled task of a call, as `POST /v1/ext/calls` takes it. */
export const CallTaskId = z.string().min(1).max(128);

/** The external-call tools. */
export const extTools: ToolFamily = (ctx) => [
  zodTool({
    name: 'ext_capabilities',
    aliases: ['list_capabilities'],
    description:
      'Every broker action and whether this group may call it now: level, the grant, its resource scope and expiry, the params JSON Schema, and if not allowed, the denial code. The typed tools (one per action you may call) follow this list.',
    input: z.strictObject({}),
    output: CapabilitiesSchema,
    annotations: READ,
    run: () => ctx.answer(ctx.client.get('/v1/ext/capabilities')),
  }),
  zodTool({
    name: 'ext_call',
    aliases: ['call_action'],
    description:
      'Run any provider action by id (e.g. github.get_repo) on the host through the broker; prefer the typed tool of the action when it is listed. L2+ actions need task_id of a task in DOING or APPROVAL assigned to this group. Reuse request_id to retry safely: the broker replays a finished call instead of running it twice.',
    input: z.strictObject({
      action: z.string().min(1).describe('Action id, `<provider>.<action>`'),
      params: z.record(z.string(), z.unknown()).default({}).describe("The action's parameters (ext_capabilities gives each action's params_schema)"),
      task_id: CallTaskId.optional().describe('The coupled task (required for L2 and L3 actions)'),
      request_id: RequestId.optional().describe('Idempotency key; a new one is generated when absent'),
    }),
    output: CallResultSchema,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    run: ({ action, params, task_id, request_id }) => {
      const key = request_id ?? randomUUID();
      return ctx.answer(ctx.client.post('/v1/ext/calls', { action, params, ...(task_id ? { task_id } : {}) }, { idempotencyKey: key }), key);
    },
  }),
  zodTool({
    name: 'ext_get_call',
    aliases: ['get_call'],
    description: 'The stored outcome of one of this group’s calls, by request id, with its receipt and answer.',
    input: z.strictObject({ request_id: RequestId }),
    output: CallSchema,
    annotations: READ,
    run: ({ request_id }) => ctx.answer(ctx.client.get(`/v1/ext/calls/${encodeURIComponent(request_id)}`)),
  }),
  zodTool({
    name: 'ext_list_calls',
    aliases: ['list_calls'],
    description:
      'This group’s own calls, newest first, without receipts or results: find a call whose request_id you lost, or the ones that ended unknown_outcome after a broker restart (check the resource before retrying those under a new request_id). Filters: status, task_id; limit (1–1000, default 100); cursor (the previous page’s next_cursor).',
    input: z.strictObject(ListCallsQuery.omit({ group: true }).shape),
    output: pageOf(CallSummarySchema),
    annotations: READ,
    run: (query) => ctx.answer(ctx.client.get('/v1/ext/calls', { query })),
  }),
];
