import { z } from 'zod';
import { createRoute, json, jsonRequest, problems, SIGNED, WRITE_ERRORS, IdempotencyKeyHeader, type Operation } from '../../../platform/http/contract.js';
import { jsonBody } from '../../../platform/http/validate.js';
import { ackDispatch, dispatchJson } from '../service/dispatch.js';
import { actorOf } from '../http.js';
import type { KernelDeps } from '../service/common.js';
import { DispatchIdParams, DispatchSchema } from './schemas.js';

/** The body of an ack: `{}` (no members), or no body at all. */
const AckBody = z.strictObject({});

/**
 * `POST /v1/dispatches/{id}/ack` (body `{}` or empty): the dispatch's group acknowledges it.
 * Idempotent: 200 with the dispatch (`status: "acked"`) every time. The body is checked before the
 * dispatch is looked up. Errors: 400 `malformed_json`, 422 `validation_failed` (any member),
 * 404 `not_found` for an unknown dispatch or another group's.
 */
export function ackDispatchOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/dispatches/{id}/ack',
      operationId: 'ackDispatch',
      tags: ['kernel'],
      summary: 'Acknowledge a dispatch',
      security: [SIGNED],
      request: { params: DispatchIdParams, headers: IdempotencyKeyHeader, body: jsonRequest(AckBody, false) },
      responses: { 200: json('The dispatch, acked.', DispatchSchema), ...problems(...WRITE_ERRORS, 'not_found') },
    }),
    handler: async (c) => {
      const group = actorOf(c);
      if (c.get('rawBody').byteLength > 0) await jsonBody(c, AckBody);
      return c.json(dispatchJson(await ackDispatch(deps, c.req.param('id') ?? '', group)));
    },
  };
}
