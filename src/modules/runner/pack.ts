/**
 * The context pack a runner receives: everything "the receiving agent knows about what happened
 * before it", as one JSON file written atomically (write-file-atomic: a temp file renamed over the
 * target), so an agent never reads half a pack. It holds no secret: the group's key is a separate
 * file (`{secret_file}`, the `broker secrets export` format).
 */
import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { redact } from '../../platform/audit/redact.js';
import { taskContext } from '../kernel/service/read.js';
import type { DispatchRow } from '../kernel/model.js';
import type { TaskStore } from '../kernel/store.js';
import { exportSecretFile, type GroupKey } from '../identity/keys.js';

/** What the composition supplies for a pack beyond the kernel's rows (the calls module's views). */
export interface PackSources {
  /** The external calls made under a task, summarised (status, action, receipt verdict), oldest first. */
  calls(taskId: string): Promise<unknown[]>;
  /** The group's current capabilities (grants in force, by provider and action). */
  capabilities(group: string): unknown;
}

/** The files of one run: the pack, the secret file, the run's directory. Paths are absolute. */
export interface RunFiles {
  dir: string;
  contextFile: string;
  secretFile: string;
}

/** Where a run's files live: `<dataDir>/runner/runs/<run id>/context.json` and `<dataDir>/runner/secrets/<group>/.ipc_secret`. */
export function runFiles(dataDir: string, runId: string, group: string): RunFiles {
  const dir = path.join(dataDir, 'runner', 'runs', runId);
  return { dir, contextFile: path.join(dir, 'context.json'), secretFile: path.join(dataDir, 'runner', 'secrets', group, '.ipc_secret') };
}

/**
 * Writes the pack of `dispatch` (format `nanoclaw.context/1`: `{format, run_id, dispatch, task,
 * activity, gate_decisions, calls, capabilities, written_at}`) atomically to `files.contextFile`
 * (mode 0644: a container user must read it), and the group's current key to `files.secretFile`
 * (mode 0600, as `broker secrets export` writes it). Every value passes through `redact`.
 * @throws ApiError 404 when the task is gone; fs errors.
 */
export async function writePack(
  deps: { tasks: TaskStore; sources: PackSources; key: GroupKey; nowMs: number },
  files: RunFiles,
  runId: string,
  dispatch: DispatchRow,
): Promise<void> {
  const ctx = await taskContext(deps, dispatch.taskId);
  const pack = redact({
    format: 'nanoclaw.context/1',
    run_id: runId,
    dispatch: { id: dispatch.id, dispatch_key: dispatch.dispatchKey, kind: dispatch.kind, group: dispatch.group, target_state: dispatch.targetState },
    task: ctx.task,
    activity: ctx.activity,
    gate_decisions: ctx.gateDecisions,
    calls: await deps.sources.calls(dispatch.taskId),
    capabilities: deps.sources.capabilities(dispatch.group),
    written_at: new Date(deps.nowMs).toISOString(),
  });
  fs.mkdirSync(files.dir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(files.contextFile, `${JSON.stringify(pack, null, 2)}\n`, { mode: 0o644 });
  exportSecretFile(path.dirname(files.secretFile), deps.key);
}
