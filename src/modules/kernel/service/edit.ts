/**
 * Edits of a task that do not move it: its definition of done (`PATCH /v1/tasks/{id}/dod`) and its
 * title, description and priority (`PATCH /v1/tasks/{id}`).
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../../../platform/http/problem.js';
import { rolesOf } from '../machine.js';
import { dodItems, type Priority, type TaskPatch, type TaskRow } from '../model.js';
import { checkIfMatch } from '../precondition.js';
import type { TaskWrite } from '../store.js';
import { fieldError, found, refusing, type KernelDeps } from './common.js';

/** Checklist changes: items by id, and/or `docs_updated`. */
export interface DodUpdate {
  items?: { id: number; done: boolean }[];
  docsUpdated?: boolean;
}

/**
 * `PATCH /v1/tasks/{id}/dod`: ticks definition-of-done items and/or sets `docs_updated`. Allowed
 * for `main`, the assigned group and the executor. One versioned update and one
 * `task.dod_updated` audit row (`{items, docs_updated?, version}`).
 * @throws ApiError 404; 428/412; 403 `forbidden`; 409 `conflict` (task is DONE);
 *   422 `validation_failed` (unknown item id); 503 `audit_unavailable`.
 */
export async function updateDod(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: DodUpdate): Promise<TaskRow> {
  return refusing(deps, actor, id, { action: 'dod' }, async () => {
    const written = await deps.tasks.change(id, (current): TaskWrite => {
      const row = found(current, id);
      checkIfMatch(ifMatch, row.version);
      const roles = rolesOf(actor, row);
      if (!roles.has('main') && !roles.has('assignee') && row.executorGroup !== actor) {
        throw new ApiError('forbidden', `Only main, the assigned group or the executor update task ${id}'s definition of done.`);
      }
      if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE; its definition of done is final.`, { state: row.state });
      const items = dodItems(row);
      for (const change of input.items ?? []) {
        const item = items.find((i) => i.id === change.id);
        if (!item) throw fieldError('items', `task ${id} has no definition-of-done item ${change.id}`);
        item.done = change.done;
      }
      const docs = input.docsUpdated !== undefined ? { docsUpdated: input.docsUpdated } : {};
      return {
        nowMs: deps.clock.now(),
        patch: { definitionOfDone: JSON.stringify(items), ...docs },
        activities: [
          {
            actor,
            kind: 'task.dod_updated',
            subject: id,
            detail: { items: input.items ?? [], ...(input.docsUpdated !== undefined ? { docs_updated: input.docsUpdated } : {}), version: row.version + 1 },
          },
        ],
      };
    });
    return written.task;
  });
}

/**
 * An edit of a task's own fields (`PATCH /v1/tasks/{id}`): the members present are the fields the
 * caller asks to set. `type` and `gate` are not here: they are fixed at creation.
 */
export interface TaskEdit {
  title?: string;
  description?: string;
  priority?: Priority;
}

/** What the audit row records of a description: its length and sha-256 hex, never the text. */
export interface TextDigest {
  length: number;
  sha256: string;
}

/**
 * One changed field in a `task.updated` audit row. `title` and `priority` are recorded as they
 * are (as `task.created` records them); `description` as a {@link TextDigest}, because
 * `task.created` does not store the description either and it may be up to 10 000 characters.
 */
export interface FieldChange<T> {
  from: T;
  to: T;
}

/** The `changes` member of a `task.updated` audit row: exactly the fields that changed. */
export interface TaskChanges {
  title?: FieldChange<string>;
  description?: FieldChange<TextDigest>;
  priority?: FieldChange<Priority>;
}

function digestOf(text: string): TextDigest {
  return { length: text.length, sha256: createHash('sha256').update(text, 'utf8').digest('hex') };
}

/** The fields the assigned group may edit; every other field of {@link TaskEdit} is main's. */
const ASSIGNEE_EDITABLE: ReadonlySet<keyof TaskEdit> = new Set(['description']);

/**
 * `PATCH /v1/tasks/{id}`: edits a task's title, description and/or priority. `main` may edit all
 * three; the assigned group only the description (asking for any other field, even with its
 * current value, is refused); anyone else is refused. Fields equal to the current value are not
 * changes: when nothing changes, the task is answered as it is, with no version bump and no audit
 * row. Otherwise one versioned update (`version + 1`, `updated_at`) and one `task.updated` audit
 * row `{changes: {field: {from, to}}, version}` ({@link TaskChanges}) in one transaction.
 * @returns the task after the edit (the same row for a no-op).
 * @throws ApiError 404 `not_found`; 428 `precondition_required` / 412 `precondition_failed`
 *   (If-Match); 403 `forbidden` (audited as `task.refused`); 409 `conflict` (task is DONE, with
 *   `state`); 503 `audit_unavailable`.
 */
export async function updateTask(deps: KernelDeps, id: string, actor: string, ifMatch: string | undefined, input: TaskEdit): Promise<TaskRow> {
  const fields = (Object.keys(input) as (keyof TaskEdit)[]).filter((f) => input[f] !== undefined).sort();
  return refusing(deps, actor, id, { action: 'update', fields }, async () => {
    const written = await deps.tasks.change(id, (current): TaskWrite | null => {
      const row = found(current, id);
      checkIfMatch(ifMatch, row.version);
      const roles = rolesOf(actor, row);
      if (!roles.has('main')) {
        if (!roles.has('assignee')) throw new ApiError('forbidden', `Only main or the assigned group edit task ${id}.`);
        const mainOnly = fields.filter((f) => !ASSIGNEE_EDITABLE.has(f));
        if (mainOnly.length > 0) {
          throw new ApiError('forbidden', `The assigned group may edit only the description of task ${id}; ${mainOnly.join(' and ')} ${mainOnly.length === 1 ? 'is' : 'are'} main's to change.`, {
            fields: mainOnly,
          });
        }
      }
      if (row.state === 'DONE') throw new ApiError('conflict', `Task ${id} is DONE; its title, description and priority are final.`, { state: row.state });
      const patch: TaskPatch = {};
      const changes: TaskChanges = {};
      if (input.title !== undefined && input.title !== row.title) {
        patch.title = input.title;
        changes.title = { from: row.title, to: input.title };
      }
      if (input.description !== undefined && input.description !== row.description) {
        patch.description = input.description;
        changes.description = { from: digestOf(row.description), to: digestOf(input.description) };
      }
      if (input.priority !== undefined && input.priority !== row.priority) {
        patch.priority = input.priority;
        changes.priority = { from: row.priority as Priority, to: input.priority };
      }
      if (Object.keys(patch).length === 0) return null;
      return { nowMs: deps.clock.now(), patch, activities: [{ actor, kind: 'task.updated', subject: id, detail: { changes, version: row.version + 1 } }] };
    });
    return written.task;
  });
}
