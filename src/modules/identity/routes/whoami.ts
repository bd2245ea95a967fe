import { z } from 'zod';
import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { ApiError } from '../../../platform/http/problem.js';

/** Who a signature says the caller is. */
export const Whoami = z
  .strictObject({
    group: z.string().describe('The agent group that signed.'),
    key_version: z.number().int().min(1).describe('The version of its key that signed.'),
    keyid: z.string().describe('`<group>:<version>`, as in `Signature-Input`.'),
  })
  .meta({ id: 'Whoami' });

/**
 * `GET /v1/whoami`: who the signature says you are.
 * 200 {@link Whoami} for a group; 403 `forbidden` for any other principal (bearer tokens).
 */
export const whoamiOp: Operation = {
  route: createRoute({
    method: 'get',
    path: '/v1/whoami',
    operationId: 'whoami',
    tags: ['identity'],
    summary: 'Who the signature says you are',
    security: [SIGNED],
    responses: { 200: json('The signing group and key.', Whoami), ...problems() },
  }),
  handler: (c) => {
    const p = c.get('principal');
    if (p.type !== 'group') throw new ApiError('forbidden', 'whoami answers signed group requests only.');
    return c.json({ group: p.group, key_version: p.keyVersion, keyid: p.keyid });
  },
};
