/** Small helpers the kernel's route handlers share. */
import type { Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../../platform/http/env.js';
import { ApiError } from '../../platform/http/problem.js';
import { etagOf, taskJson, type TaskRow } from './model.js';

/**
 * The group that signed the request: the kernel's actor.
 * @throws ApiError 403 `forbidden` for any other principal (kernel routes are for groups).
 */
export function actorOf(c: Context<AppEnv>): string {
  const p = c.get('principal');
  if (p.type !== 'group') throw new ApiError('forbidden', 'Task routes answer signed group requests only.');
  return p.group;
}

/** Answers a task as JSON with `ETag: "v<version>"`. */
export function sendTask(c: Context<AppEnv>, row: TaskRow, status: 200 | 201 = 200): Response {
  c.header('ETag', etagOf(row.version));
  return c.json(taskJson(row), status);
}

/** Task ids are ULIDs (26 Crockford base32 characters); anything else is a 404, not a lookup. */
export const TaskId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/);

/**
 * The `{id}` path parameter as a task id.
 * @throws ApiError 404 `not_found` when it cannot be a task id.
 */
export function taskIdParam(c: Context<AppEnv>): string {
  const id = c.req.param('id') ?? '';
  if (!TaskId.safeParse(id).success) throw new ApiError('not_found', `No task ${id}.`);
  return id;
}

/** A free-text reason: 1–2000 characters after trimming. */
export const ReasonText = z.string().trim().min(1).max(2000);

/** Definition-of-done items to set, `[{id, done}]` (1–50; ids start at 1), as `PATCH /v1/tasks/{id}/dod` takes them. */
export const DodItemUpdates = z.array(z.strictObject({ id: z.number().int().min(1), done: z.boolean() })).min(1).max(50);
