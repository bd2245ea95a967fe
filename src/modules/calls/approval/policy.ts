/**
 * Which actions need an approval per call (HashiCorp Vault's control groups: one specific request
 * is approved, not a capability): `<policiesDir>/approvals.json`,
 * `{"per_call": {"<action id>": {"ttl_s": 3600}}, "default_ttl_s": 3600}`. Without the file the
 * defaults hold: `github.merge_pull` and `github.dispatch_workflow` (production changes), each held
 * for at most one hour. `{"per_call": {}}` turns per-call approval off.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** How long a held call waits for its approvals unless the policy says otherwise (s): one hour. */
export const DEFAULT_HOLD_TTL_S = 3600;

/** The actions held by default when there is no `approvals.json`. */
export const DEFAULT_PER_CALL_ACTIONS: readonly string[] = ['github.merge_pull', 'github.dispatch_workflow'];

const ApprovalsFile = z.strictObject({
  per_call: z.record(
    z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'an action id'),
    z.strictObject({ ttl_s: z.number().int().min(1).max(7 * 24 * 3600).optional() }),
  ),
  default_ttl_s: z.number().int().min(1).max(7 * 24 * 3600).optional(),
});

/** The per-call approval of one action: how long a held call waits (s). */
export interface PerCallRule {
  ttlS: number;
}

/** The action's per-call rule, or undefined when its calls run without one. */
export type PerCallPolicy = (actionId: string) => PerCallRule | undefined;

/**
 * Reads `<policiesDir>/approvals.json` (optional; see the module note).
 * @throws Error naming the file and what is wrong (so `broker serve` stops before it serves).
 */
export function loadPerCallPolicy(policiesDir: string): PerCallPolicy {
  const file = path.join(policiesDir, 'approvals.json');
  let rules: Map<string, PerCallRule>;
  if (!fs.existsSync(file)) {
    rules = new Map(DEFAULT_PER_CALL_ACTIONS.map((a) => [a, { ttlS: DEFAULT_HOLD_TTL_S }]));
  } else {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parsed = ApprovalsFile.safeParse(json);
    if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const ttl = parsed.data.default_ttl_s ?? DEFAULT_HOLD_TTL_S;
    rules = new Map(Object.entries(parsed.data.per_call).map(([a, r]) => [a, { ttlS: r.ttl_s ?? ttl }]));
  }
  return (actionId) => rules.get(actionId);
}
