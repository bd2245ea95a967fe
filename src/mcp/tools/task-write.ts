/**
 * What the task-changing tools share: the `version` argument and the versioned mutation (one
 * read for the ETag when no version is given, then the write with `If-Match`).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { BrokerClient, BrokerResponse } from '../../client/index.js';
import { TaskId } from '../../modules/kernel/http.js';
import { etagOf } from '../../modules/kernel/model.js';

/** The task a tool acts on: a ULID. */
export const TaskIdArg = TaskId.describe('The task id (a ULID)');

/** The version an agent last read; absent → the tool reads the current one first. */
export const Version = z.number().int().min(1).optional().describe('The task version you last read (ETag "v<version>"); omit to act on the current version');

/**
 * One versioned task mutation: `method /v1/tasks/{taskId}/{sub}` with the JSON body (members
 * that are `undefined` are not sent), `If-Match: "v<version>"` and a fresh Idempotency-Key.
 * Without `version` it first GETs the task and sends the `ETag` it answered: one read, then the
 * write, no retry, so a change in between still gets the kernel's 412 `precondition_failed`.
 * @returns the write's response, or the read's when the read failed (e.g. 404 `not_found`).
 *   Never throws on an HTTP error status.
 * @throws BrokerUnreachableError when the broker cannot be reached.
 */
export async function mutateTask(
  client: BrokerClient,
  method: 'POST' | 'PATCH',
  taskId: string,
  sub: 'transition' | 'dod' | 'gate',
  json: Record<string, unknown>,
  version: number | undefined,
): Promise<BrokerResponse> {
  const path = `/v1/tasks/${encodeURIComponent(taskId)}`;
  let ifMatch: string;
  if (version !== undefined) ifMatch = etagOf(version);
  else {
    const current = await client.get(path);
    if (current.status >= 400) return current;
    // Every task answer carries an ETag; an empty If-Match would get the kernel's 428.
    ifMatch = current.headers.get('etag') ?? '';
  }
  return client.request(method, `${path}/${sub}`, { json, headers: { 'if-match': ifMatch }, idempotencyKey: randomUUID() });
}
