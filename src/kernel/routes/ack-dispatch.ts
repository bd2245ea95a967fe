import type { Context } from 'hono';
import type { AppEnv } from '../../http/env.js';
import { ackDispatch, dispatchJson } from '../dispatch.js';
import { actorOf } from '../http.js';
import type { KernelDeps } from '../tasks.js';

/**
 * `POST /v1/dispatches/{id}/ack` (body `{}` or empty): the dispatch's group acknowledges it.
 * Idempotent: 200 with the dispatch (`status: "acked"`) every time. 404 `not_found` for an unknown
 * dispatch or another group's.
 */
export function ackDispatchRoute(deps: KernelDeps) {
  return (c: Context<AppEnv>) => {
    const group = actorOf(c);
    return c.json(dispatchJson(ackDispatch(deps, c.req.param('id') ?? '', group)));
  };
}
