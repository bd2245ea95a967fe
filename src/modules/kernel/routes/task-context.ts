import type { Context } from 'hono';
import { callsForTask } from '../../calls/views.js';
import type { AppEnv } from '../../../platform/http/env.js';
import { actorOf, taskIdParam } from '../http.js';
import { etagOf, taskJson } from '../model.js';
import type { Db } from '../../../platform/db/open.js';
import type { KernelDeps } from '../service/common.js';
import { taskContext } from '../service/read.js';

/**
 * `GET /v1/tasks/{id}/context`: what a dispatched agent receives as its prompt context —
 * `{task, activity, gate_decisions, external_calls}`. `activity` is the task's audit rows oldest
 * first (`{seq, ts, actor, kind, detail}`); `external_calls` is the task's broker calls, oldest first,
 * without receipts or results (`callsForTask`, issue 4). 404 `not_found`.
 */
export function taskContextRoute(deps: KernelDeps & { db: Db }) {
  return async (c: Context<AppEnv>) => {
    actorOf(c);
    const ctx = await taskContext(deps, taskIdParam(c));
    c.header('ETag', etagOf(ctx.task.version));
    return c.json({
      task: taskJson(ctx.task),
      activity: ctx.activity.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail })),
      gate_decisions: ctx.gateDecisions,
      external_calls: await callsForTask(deps.db, ctx.task.id),
    });
  };
}
