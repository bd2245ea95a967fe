import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** A capability level: 0 none, 1 read, 2 write, 3 production (seed design). */
export type Level = 0 | 1 | 2 | 3;

/** Group names are lowercase identifiers; they appear in key ids (`<group>:<version>`). */
export const GroupName = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'group names are 1–63 of [a-z0-9_-], starting with a letter');

const LevelName = z.enum(['L0', 'L1', 'L2', 'L3']).transform((l) => Number(l.slice(1)) as Level);

const GroupsFile = z.object({
  groups: z
    .array(z.object({ name: GroupName, ceiling: LevelName, description: z.string().default('') }))
    .min(1)
    .refine((gs) => new Set(gs.map((g) => g.name)).size === gs.length, 'group names must be unique'),
});

/** One agent group from `policies/groups.json`. `ceiling` caps the level it can be granted. */
export interface GroupPolicy {
  name: string;
  ceiling: Level;
  description: string;
}

/** The groups, by name. */
export type Groups = ReadonlyMap<string, GroupPolicy>;

/**
 * Loads and validates `<policiesDir>/groups.json`.
 * @throws Error naming the file and the first invalid field.
 */
export function loadGroups(policiesDir: string): Groups {
  const file = path.join(policiesDir, 'groups.json');
  const parsed = GroupsFile.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return new Map(parsed.data.groups.map((g) => [g.name, g]));
}
