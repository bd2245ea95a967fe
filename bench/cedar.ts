/**
 * Bench (i): the peer engine. Cedar's official wasm build (`@cedar-policy/cedar-wasm`) deciding
 * the same candidate grants as (d)'s steps 5–10, each grant translated to one Cedar `permit`:
 * - the principal is the group (`Group::"g0001"`), the action `Action::"call"`, the resource any;
 * - `when`: the level (`context.level <= <grant level>`), the expiry (`context.now < <expires_at>`,
 *   Unix ms, as step 6's `now >= expiresAt` refuses), the allow list (`context.action like "…"`
 *   per pattern, `*` the same trailing wildcard) and the resource scope (`context.resource like`);
 * - `unless`: the grant's deny list (`context.action like "…"`). A grant's deny list takes that
 *   grant out (step 8), it does not forbid what another grant allows, so it is the permit's
 *   `unless`, not a `forbid`: a `forbid` would veto across grants, which the broker does not do.
 * Only usable grants (active; L3 with two approvals) are translated, as step 5 considers only them.
 * Each group's policies are preparsed once (`preparsePolicySet`) and every decision is one
 * `statefulIsAuthorized` call with no entities.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { GrantView } from '../src/modules/grants/types.js';

/** A Cedar string literal. */
const str = (s: string) => JSON.stringify(s);
/** A grant pattern as a Cedar `like` pattern: `*` is the wildcard in both (grant patterns hold no backslash). */
const like = str;

/** The Cedar text of one grant's permit. */
export function grantPolicy(g: GrantView): string {
  const when = [`context.level <= ${g.level}`];
  if (g.expiresAt !== null) when.push(`context.now < ${g.expiresAt}`);
  if (g.allowedActions) when.push(`(${g.allowedActions.map((p) => `context.action like ${like(p)}`).join(' || ')})`);
  if (g.resources) when.push(`(${g.resources.map((p) => `context.resource like ${like(p)}`).join(' || ')})`);
  const unless = g.deniedActions?.length ? ` unless { ${g.deniedActions.map((p) => `context.action like ${like(p)}`).join(' || ')} }` : '';
  return `@id(${str(g.id)}) permit (principal == Group::${str(g.group)}, action == Action::"call", resource) when { ${when.join(' && ')} }${unless};`;
}

/**
 * Preparses one policy set per group (id = the group name) from `candidates` of each.
 * @returns the number of policies per set, by group.
 * @throws Error when Cedar cannot parse a set.
 */
export function preparse(byGroup: Map<string, readonly GrantView[]>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [group, grants] of byGroup) {
    const usable = grants.filter((g) => g.status === 'active' && (g.level < 3 || g.approvals >= 2));
    const answer = cedar.preparsePolicySet(group, { staticPolicies: usable.map(grantPolicy).join('\n') });
    if (answer.type !== 'success') throw new Error(`cedar: ${JSON.stringify(answer.errors)}`);
    counts.set(group, usable.length);
  }
  return counts;
}

/** One decision by Cedar: true when some permit applies. @throws Error when Cedar fails. */
export function cedarAllows(group: string, action: string, level: number, resource: string, now: number): boolean {
  const answer = cedar.statefulIsAuthorized({
    principal: { type: 'Group', id: group },
    action: { type: 'Action', id: 'call' },
    resource: { type: 'Resource', id: resource },
    context: { action, level, resource, now },
    preparsedPolicySetId: group,
    entities: [],
  });
  if (answer.type !== 'success') throw new Error(`cedar: ${JSON.stringify(answer.errors)}`);
  return answer.response.decision === 'allow';
}

/** Cedar's version, for the results. */
export const cedarVersion = (): string => cedar.getCedarVersion();
