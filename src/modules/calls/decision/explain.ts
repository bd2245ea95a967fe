/**
 * The sentences of two refusals of the decision path that depend on more than the candidate
 * grants: a level above the group's ceiling (`policies/groups.json`), which no grant can ever
 * give, and a group whose grant was revoked. A refusal's `detail` is the line a human acts on, so
 * it must not send them to ask for a grant they can never get, and must name a revocation rather
 * than leave them guessing why a grant that worked a minute ago is gone.
 */
import type { Groups } from '../../identity/groups.js';
import type { RevokedGrant } from '../../grants/types.js';

/** An action level above the calling group's ceiling, and who may hold that level. */
export interface CeilingBreach {
  /** The calling group's ceiling (0–3). */
  ceiling: number;
  /** The groups whose ceiling is at least the action's level, in `groups.json` order. */
  holders: readonly string[];
  /**
   * The sentence after "the ceiling is Lc; ": what the action needs, who may hold it, what to do.
   * Ends with a period.
   */
  tail: string;
  /** Problem members: `group_ceiling`, `required_level`, `groups_that_may_hold` (frozen). */
  extensions: Readonly<Record<string, unknown>>;
}

/**
 * Whether `action` needs a level above the ceiling of `group`. Undefined `groups` or an unknown
 * group (the signature check admits only known groups, so only in unit tests) answer null.
 */
export function ceilingBreach(groups: Groups | undefined, group: string, action: { id: string; level: number }): CeilingBreach | null {
  const policy = groups?.get(group);
  if (policy === undefined || policy.ceiling >= action.level) return null;
  const holders = Object.freeze([...groups!.values()].filter((g) => g.ceiling >= action.level).map((g) => g.name));
  const who = holders.length === 0 ? 'no group may hold' : `only ${holders.length === 1 ? 'group' : 'groups'} ${holders.join(', ')} may hold`;
  const ask = holders.length === 0 ? '' : `: ask a group that may (${holders.join(', ')}) to do it`;
  return {
    ceiling: policy.ceiling,
    holders,
    tail: `${action.id} needs L${action.level}, which ${who} (policies/groups.json), so no grant can give it to ${group}${ask}.`,
    extensions: Object.freeze({ group_ceiling: policy.ceiling, required_level: action.level, groups_that_may_hold: holders }),
  };
}

/** The problem member naming a revoked grant: `{id, revoked_at (RFC 3339), revoked_by, reason}`. */
export function revokedGrantMember(r: RevokedGrant): Record<string, unknown> {
  return { id: r.id, revoked_at: new Date(r.revokedAt).toISOString(), revoked_by: r.revokedBy, reason: r.reason };
}

/**
 * The `detail` of 403 `no_capability`: the group holds no grant for the provider; then, when
 * known, the revocation that took the last one away (grant id, instant, by whom, the reason,
 * JSON-quoted); then either the ceiling the action is above (see {@link ceilingBreach}) or where
 * to ask for a grant.
 */
export function noCapabilityDetail(group: string, provider: string, breach: CeilingBreach | null, revoked: RevokedGrant | null): string {
  let text = `Group ${group} holds no grant for provider ${provider}`;
  if (revoked !== null) {
    const by = revoked.revokedBy === null ? '' : ` by ${revoked.revokedBy}`;
    const why = revoked.reason === null ? '' : ` (reason: ${JSON.stringify(revoked.reason)})`;
    text += `: grant ${revoked.id} was revoked at ${new Date(revoked.revokedAt).toISOString()}${by}${why}`;
    return breach === null ? `${text}; ask an operator or main for a new one (POST /v1/grants).` : `${text}. Its ceiling is L${breach.ceiling}; ${breach.tail}`;
  }
  return breach === null ? `${text}; ask an operator or main for one (POST /v1/grants).` : `${text}, and its ceiling is L${breach.ceiling}; ${breach.tail}`;
}

/** The `detail` of 403 `insufficient_level` when the action is above the group's ceiling. */
export function aboveCeilingDetail(grant: { id: string; level: number }, group: string, breach: CeilingBreach): string {
  return `Grant ${grant.id} is L${grant.level} and group ${group}'s ceiling is L${breach.ceiling}; ${breach.tail}`;
}
