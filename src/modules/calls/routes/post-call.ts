import type { Context } from 'hono';
import type { AppEnv } from '../../../platform/http/env.js';
import { ApiError } from '../../../platform/http/problem.js';
import type { CallService } from '../service.js';

/**
 * `POST /v1/ext/calls` (issue 4): body `{action, params?, task_id?}`, signed by an agent group with
 * an `Idempotency-Key`. 200 `{request_id, status: "succeeded", action, result, receipt,
 * duration_ms}`; every other answer is problem+json with `code` and `receipt` (README "Calls").
 * A replay answers the stored status and body with `Idempotent-Replayed: true`.
 */
export function postCallRoute(service: CallService) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const p = c.get('principal');
    if (p.type !== 'group') throw new ApiError('forbidden', 'Only agent groups make external calls; sign the request as a group (RFC 9421).');
    const answer = await service.submit({
      group: p.group,
      keyid: p.keyid,
      requestId: c.get('idempotencyKey'),
      rawBody: c.get('rawBody'),
      bodySha256: c.get('bodySha256'),
      log: c.get('log'),
      instance: c.req.path,
      // The signature middleware's key lookup polled the change watch for this request.
      watchPolled: true,
    });
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  };
}
