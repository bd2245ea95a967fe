/**
 * `policies/runners.json`: which command starts an agent for a group's dispatches, and the
 * work-in-progress limits of the dispatch loop. Validated with zod when the broker starts; a
 * malformed file stops the start. An absent file, or a group absent from it, keeps the dispatch
 * waiting for an agent that polls `GET /v1/dispatches` (no runner).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { GroupName } from '../identity/groups.js';

/** The placeholders a command argument may hold; each is replaced by its value, nothing else is interpreted. */
export const PLACEHOLDERS = ['task_id', 'dispatch_id', 'group', 'ipc_dir', 'context_file', 'secret_file'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const Runner = z
  .object({
    /** argv: the program then its arguments, spawned without a shell. */
    command: z.array(z.string().min(1)).min(1),
    /** Variables added to the runner's environment (values may hold placeholders). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /** Seconds before the runner's whole process group is killed. */
    timeout_s: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
    /** Runners of this group running at once; further dispatches wait. */
    concurrency: z.number().int().min(1).max(100).default(1),
  })
  .strict();

const RunnersFile = z
  .object({
    runners: z.record(GroupName, Runner).default({}),
    wip: z
      .object({ per_group: z.number().int().min(1).max(1000).default(2), total: z.number().int().min(1).max(10_000).default(8) })
      .strict()
      .default({ per_group: 2, total: 8 }),
    interruption: z
      .object({
        /** After this many interrupted runs of a task, it is left BLOCKED; fewer, and it is dispatched again after the cool-down. */
        max: z.number().int().min(1).max(100).default(3),
        cooldown_s: z.number().int().min(0).max(24 * 3600).default(60),
      })
      .strict()
      .default({ max: 3, cooldown_s: 60 }),
  })
  .strict();

/** One group's runner. `timeout_s` in seconds. */
export type RunnerSpec = z.infer<typeof Runner>;

/** The parsed `runners.json`: runners by group, WIP limits (tasks in DOING), the interruption policy. */
export interface RunnersPolicy {
  /** False when `runners.json` is absent: no runner and no WIP limit (dispatch as before). */
  configured: boolean;
  runners: ReadonlyMap<string, RunnerSpec>;
  wip: { perGroup: number; total: number };
  interruption: { max: number; cooldownS: number };
}

/** The policy when `runners.json` is absent: no runner, no WIP limit (the defaults 2 per group, 8 in total apply once the file exists). */
export const NO_RUNNERS: RunnersPolicy = { configured: false, runners: new Map(), wip: { perGroup: 2, total: 8 }, interruption: { max: 3, cooldownS: 60 } };

/**
 * Loads and validates `<policiesDir>/runners.json`; an absent file answers {@link NO_RUNNERS}.
 * Every `{name}` in a command or env value must be one of {@link PLACEHOLDERS}.
 * @throws Error naming the file and the first invalid field (malformed JSON, unknown field, unknown placeholder).
 */
export function loadRunners(policiesDir: string): RunnersPolicy {
  const file = path.join(policiesDir, 'runners.json');
  if (!fs.existsSync(file)) return NO_RUNNERS;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const parsed = RunnersFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  for (const [group, spec] of Object.entries(parsed.data.runners)) {
    for (const text of [...spec.command, ...Object.values(spec.env)]) {
      for (const m of text.matchAll(/\{([a-z_]+)\}/g)) {
        if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!)) throw new Error(`${file}: runners.${group}: unknown placeholder {${m[1]}} (known: ${PLACEHOLDERS.join(', ')})`);
      }
    }
  }
  const d = parsed.data;
  return {
    configured: true,
    runners: new Map(Object.entries(d.runners)),
    wip: { perGroup: d.wip.per_group, total: d.wip.total },
    interruption: { max: d.interruption.max, cooldownS: d.interruption.cooldown_s },
  };
}

/**
 * Replaces each `{placeholder}` in `text` by its value. The result is one argv element: spaces,
 * quotes, `;`, `$()` and the like are kept verbatim (no shell ever sees it).
 */
export function fill(text: string, values: Record<Placeholder, string>): string {
  return text.replace(/\{([a-z_]+)\}/g, (whole, name: string) => (name in values ? values[name as Placeholder] : whole));
}
