/** `whoami`: the group and key this server signs as. */
import { z } from 'zod';
import { Whoami } from '../../modules/identity/routes/whoami.js';
import { READ, zodTool, type ToolFamily } from '../registry.js';

/** The identity tool: `whoami` (`GET /v1/whoami`). */
export const identityTools: ToolFamily = (ctx) => [
  zodTool({
    name: 'whoami',
    description: 'The agent group and key version this server signs as.',
    input: z.strictObject({}),
    output: Whoami,
    annotations: READ,
    run: () => ctx.answer(ctx.client.get('/v1/whoami')),
  }),
];
