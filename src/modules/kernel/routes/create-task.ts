import { z } from 'zod';
import { createRoute, json, jsonRequest, IdempotencyKeyHeader, problems, ReplayedHeader, SIGNED, WRITE_ERRORS, type Operation } from '../../../platform/http/contract.js';
import { bodyHash, jsonBody } from '../../../platform/http/validate.js';
import { GroupName } from '../../identity/groups.js';
import { actorOf, sendTask, TaskId } from '../http.js';
import { GATES, PRIORITIES, TASK_TYPES } from '../model.js';
import type { KernelDeps } from '../service/common.js';
import { createTask } from '../service/create.js';
import { ETagHeader, TaskSchema } from './schemas.js';

/** The body of `POST /v1/tasks`. Unknown members are refused. */
export const CreateTaskBody = z.strictObject({
  title: z.string().trim().min(1).max(200),
  description: z.string().max(10_000).optional(),
  type: z.enum(TASK_TYPES),
  priority: z.enum(PRIORITIES).optional(),
  gate: z.enum(GATES).optional(),
  definition_of_done: z.array(z.string().trim().min(1).max(500)).max(50).optional(),
  assigned_group: GroupName.optional(),
  parent_task_id: TaskId.optional(),
});

/**
 * `POST /v1/tasks` (main only): creates a task in INBOX.
 * 201 task + `ETag` + `Location`; a retry with the same Idempotency-Key and body answers 201 again
 * (a replay keeps the original status, as grant and token-revocation replays do) with the same task,
 * as it is now, and `Idempotent-Replayed: true`.
 * Errors: 400 `malformed_json`, 422 `validation_failed`, 422 `idempotency_key_reused`, 403 `forbidden`,
 * 403 `separation_of_powers` (`assigned_group` is the approver of the task's gate; with `gate`,
 * `approver_group`, `assigned_group`).
 */
export function createTaskOp(deps: KernelDeps): Operation {
  return {
    route: createRoute({
      method: 'post',
      path: '/v1/tasks',
      operationId: 'createTask',
      tags: ['kernel'],
      summary: 'Create a task (main only)',
      security: [SIGNED],
      request: { headers: IdempotencyKeyHeader, body: jsonRequest(CreateTaskBody) },
      responses: {
        201: json('The task, in INBOX (or, for a retry, as it is now).', TaskSchema, ETagHeader.extend(ReplayedHeader.shape).extend({ Location: z.string().describe('`/v1/tasks/{id}`') })),
        ...problems(...WRITE_ERRORS, 'idempotency_key_reused', 'separation_of_powers'),
      },
    }),
    handler: async (c) => {
      const actor = actorOf(c);
      const body = await jsonBody(c, CreateTaskBody);
      const { task, replayed } = await createTask(deps, actor, body, { key: c.get('idempotencyKey'), requestHash: bodyHash(c) });
      c.header('Location', `/v1/tasks/${task.id}`);
      if (replayed) c.header('Idempotent-Replayed', 'true');
      return sendTask(c, task, 201);
    },
  };
}
