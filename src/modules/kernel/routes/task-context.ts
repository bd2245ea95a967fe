import { callsForTask } from '../../calls/views.js';
import { createRoute, json, problems, SIGNED, type Operation } from '../../../platform/http/contract.js';
import { actorOf, taskIdParam } from '../http.js';
import { etagOf, taskJson } from '../model.js';
import type { CallStore } from '../../calls/store.js';
import type { RunStore } from '../../runner/store.js';
import { runJson } from '../../runner/views.js';
import type { KernelDeps } from '../service/common.js';
import { taskContext } from '../service/read.js';
import { ETagHeader, TaskContextSchema, TaskIdParams } from './schemas.js';

/**
 * `GET /v1/tasks/{id}/context`: what a dispatched agent receives as its prompt context —
 * `{task, activity, gate_decisions, external_calls, runs}`. `activity` is the task's audit rows oldest
 * first (`{seq, ts, actor, kind, detail}`); `external_calls` is the task's broker calls, oldest first,
 * without receipts or results (`callsForTask`); `runs` is the runs started for its dispatches, with
 * their status (`policies/runners.json`). 404 `not_found`.
 */
export function taskContextOp(deps: KernelDeps & { stores: { calls: CallStore; runs: RunStore } }): Operation {
  return {
    route: createRoute({
      method: 'get',
      path: '/v1/tasks/{id}/context',
      operationId: 'getTaskContext',
      tags: ['kernel'],
      summary: "A task's working context",
      security: [SIGNED],
      request: { params: TaskIdParams },
      responses: { 200: json('The task, its activity, gate decisions and external calls.', TaskContextSchema, ETagHeader), ...problems('not_found') },
    }),
    handler: async (c) => {
      actorOf(c);
      const ctx = await taskContext(deps, taskIdParam(c));
      c.header('ETag', etagOf(ctx.task.version));
      return c.json({
        task: taskJson(ctx.task),
        activity: ctx.activity.map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail })),
        gate_decisions: ctx.gateDecisions,
        external_calls: await callsForTask(deps.stores.calls, ctx.task.id),
        runs: (await deps.stores.runs.ofTask(ctx.task.id)).map(runJson),
      });
    },
  };
}
