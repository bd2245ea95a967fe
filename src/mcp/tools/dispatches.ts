/**
 * The dispatch tools (`gov_list_dispatches`, `gov_ack_dispatch`; earlier `list_dispatches`,
 * `ack_dispatch`), listed to every group: a working group gets `execute` dispatches for the tasks
 * assigned to it, a gate's approver (main, security) `approve` dispatches for the gates it decides.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ListDispatchesQuery } from '../../modules/kernel/routes/list-dispatches.js';
import { DispatchSchema } from '../../modules/kernel/routes/schemas.js';
import { pageOf } from '../../platform/http/pagination.js';
import { READ, WRITE, zodTool, type ToolFamily } from '../registry.js';

/** The dispatch tools. */
export const dispatchTools: ToolFamily = (ctx) => [
  zodTool({
    name: 'gov_list_dispatches',
    aliases: ['list_dispatches'],
    description: 'This group’s dispatches (tasks to execute, gates to decide), oldest first: pending ones by default; page with cursor.',
    input: ListDispatchesQuery.omit({ starting_after: true }).extend({ status: z.enum(['pending', 'acked']).default('pending').describe('pending (default) or acked') }),
    output: pageOf(DispatchSchema),
    annotations: READ,
    run: (query) => ctx.answer(ctx.client.get('/v1/dispatches', { query })),
  }),
  zodTool({
    name: 'gov_ack_dispatch',
    aliases: ['ack_dispatch'],
    description: 'Acknowledge one of this group’s dispatches (from gov_list_dispatches): you have taken up the work. Idempotent: acking again answers the same acked dispatch.',
    input: z.strictObject({ dispatch_id: z.string().min(1).describe('The dispatch id') }),
    output: DispatchSchema,
    annotations: { ...WRITE, idempotentHint: true },
    run: ({ dispatch_id }) => ctx.answer(ctx.client.post(`/v1/dispatches/${encodeURIComponent(dispatch_id)}/ack`, {}, { idempotencyKey: randomUUID() })),
  }),
];
