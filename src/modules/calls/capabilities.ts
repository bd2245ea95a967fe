/**
 * What a group may call now (`GET /v1/ext/capabilities`): the decision steps that do not
 * depend on a particular call (kill switch, grant, expiry, level, deny list, allow list,
 * approval, provider) evaluated for every registered action.
 */
import type { Clock } from '../../platform/clock.js';
import type { Groups } from '../identity/groups.js';
import type { Catalog } from './catalog.js';
import { decide, type DecisionContext } from './decision/decide.js';
import type { GrantSource, RevokedGrant } from '../grants/types.js';
import { disabledByOperator, matchSwitch } from '../switches/service.js';
import type { KillSwitchRow } from '../switches/store.js';

/** One action as seen by one group. */
export interface Capability {
  action: string;
  provider: string;
  level: number;
  description: string;
  idempotent: boolean;
  /** L2+ calls need a `task_id` of a task in DOING or APPROVAL assigned to the group. */
  requires_task: boolean;
  /** True when a call could pass every step that does not depend on its params and task. */
  allowed: boolean;
  /** Why not, when not allowed: a decision code or `provider_unavailable`. */
  code: string | null;
  /** A sentence a human can act on, when not allowed. */
  detail: string | null;
  /** The grant that allows it (or the denial is about). */
  grant_id: string | null;
  /** Resource patterns the call is limited to; null = any. */
  resources: string[] | null;
  /** When the allowing grant stops working (RFC 3339); null = no expiry. */
  expires_at: string | null;
}

/**
 * Evaluates every action of the catalog for `group` at the clock's now. Resource scope (step 10)
 * and task coupling (step 11) depend on the call and are reported as `resources` and
 * `requires_task` instead. With `groups`, a denial's detail names a level above the group's
 * ceiling; a `no_capability` one names the last revocation (one read per provider at most).
 * @param switches the active kill switches, when read: an action one of them matches is
 *   `disabled_by_operator` (naming the switch) before any grant step, as in the decision order.
 */
export function capabilitiesFor(deps: { catalog: Catalog; grants: GrantSource; clock: Clock; groups?: Groups }, group: string, switches: readonly KillSwitchRow[] = []): Capability[] {
  const now = deps.clock.now();
  return deps.catalog.providers.flatMap((provider) => {
    const grants = deps.grants.candidates(group, provider.name);
    const unavailable = provider.unavailableReason();
    let revoked: RevokedGrant | null | undefined;
    const ctx: DecisionContext = {
      groups: deps.groups,
      ...(deps.grants.lastRevoked ? { lastRevoked: (g: string, p: string) => (revoked === undefined ? (revoked = deps.grants.lastRevoked!(g, p)) : revoked) } : {}),
    };
    return provider.actions.map((action): Capability => {
      const v = decide({ group, action, resource: null, taskId: undefined, now }, grants, () => null, ctx);
      const grant = v.grant;
      const base = {
        action: action.id,
        provider: provider.name,
        level: action.level,
        description: action.description,
        idempotent: action.idempotent,
        requires_task: action.level >= 2,
        grant_id: grant?.id ?? null,
        resources: grant?.resources ? [...grant.resources] : null,
        expires_at: grant?.expiresAt != null ? new Date(grant.expiresAt).toISOString() : null,
      };
      const switched = matchSwitch(switches, { group, provider: provider.name, action: action.id });
      if (switched) return { ...base, allowed: false, code: 'disabled_by_operator', detail: disabledByOperator(switched, { group, provider: provider.name, action: action.id }).detail };
      if (!v.allowed) return { ...base, allowed: false, code: v.code, detail: v.detail };
      if (unavailable !== null) {
        return { ...base, allowed: false, code: 'provider_unavailable', detail: `Provider ${provider.name} cannot run on this host (${unavailable}).` };
      }
      return { ...base, allowed: true, code: null, detail: null };
    });
  });
}
