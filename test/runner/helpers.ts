import fs from 'node:fs';
import path from 'node:path';
import { createTask } from '../../src/modules/kernel/service/create.js';
import { runDispatchOnce } from '../../src/modules/kernel/service/dispatch.js';
import { transitionTask } from '../../src/modules/kernel/service/transition.js';
import type { TaskType } from '../../src/modules/kernel/model.js';
import { REPO_ROOT, tempDir, type TestBroker } from '../helpers/harness.js';

/** The stand-in agent and the tsx loader, as absolute paths (a runner's cwd is its run directory). */
export const AGENT = path.join(REPO_ROOT, 'test/runner/fixtures/agent.ts');
export const TSX = path.join(REPO_ROOT, 'node_modules/tsx/dist/loader.mjs');

/** The argv that starts the stand-in agent, followed by `extra` arguments. */
export function agentCommand(...extra: string[]): string[] {
  return [process.execPath, '--import', TSX, AGENT, '{context_file}', '{secret_file}', ...extra];
}

/** A policies directory: the repository's groups and approvers, and `runners` as runners.json. */
export function policiesWith(runners: unknown): string {
  const dir = tempDir('broker-policies-');
  for (const f of ['groups.json', 'approvers.json']) fs.copyFileSync(path.join(REPO_ROOT, 'policies', f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'runners.json'), JSON.stringify(runners, null, 2));
  return dir;
}

/** Creates a task as main and moves it to READY, assigned to `group`. @returns its id. */
export async function readyTask(b: TestBroker, opts: { type?: TaskType; priority?: 'P0' | 'P1' | 'P2' | 'P3'; group?: string; title?: string } = {}): Promise<string> {
  const { task } = await createTask(b.deps, 'main', { title: opts.title ?? 'runner task', type: opts.type ?? 'BUG', priority: opts.priority ?? 'P2', assigned_group: opts.group ?? 'developer' }, null);
  await transitionTask(b.deps, task.id, 'main', '"v1"', { to: 'TRIAGED' });
  return (await transitionTask(b.deps, task.id, 'main', '"v2"', { to: 'READY' })).id;
}

/** One dispatch pass (with the runner's WIP limits) then one runner pass. */
export async function pass(b: TestBroker): Promise<void> {
  await runDispatchOnce({ ...b.deps, wip: b.deps.runner.wipLimits });
  await b.deps.runner.tick();
}
