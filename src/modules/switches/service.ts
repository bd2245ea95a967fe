/**
 * Kill switches: an operator's reversible stop on external calls — all of them, one group's, one
 * provider's, or one action's. A set switch refuses every call it matches with 503
 * `disabled_by_operator` (a decision step of `POST /v1/ext/calls`, docs/decisions.md) until it is
 * cleared; it touches no grant. Setting and clearing are audited with their reason
 * (`switch.set`, `switch.cleared`, subject the switch id).
 */
import { monotonicFactory } from 'ulid';
import type { Clock } from '../../platform/clock.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import type { KillSwitchRow, SwitchStore } from './store.js';

const nextUlid = monotonicFactory();

/** What a switch stops: every call, or the calls of one group, provider or action. */
export const SWITCH_SCOPES = ['all', 'group', 'provider', 'action'] as const;
/** See {@link SWITCH_SCOPES}. */
export type SwitchScope = (typeof SWITCH_SCOPES)[number];

/** A switch as the API shows it. Times are RFC 3339 UTC. */
export interface KillSwitch {
  id: string;
  scope: SwitchScope;
  target: string | null;
  reason: string;
  set_by: string;
  since: string;
  active: boolean;
  cleared_by: string | null;
  cleared_at: string | null;
  clear_reason: string | null;
}

/** What the switches module needs. */
export interface SwitchDeps {
  clock: Clock;
  stores: { switches: SwitchStore };
}

/** The input of {@link setSwitch}: `target` is required for every scope but `all`, and refused with it. */
export interface SetSwitchInput {
  scope: SwitchScope;
  target?: string | undefined;
  reason: string;
}

/** The API view of a row. */
export function switchJson(row: KillSwitchRow): KillSwitch {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: row.id,
    scope: row.scope as SwitchScope,
    target: row.target,
    reason: row.reason,
    set_by: row.setBy,
    since: new Date(row.setAt).toISOString(),
    active: row.clearedAt === null,
    cleared_by: row.clearedBy,
    cleared_at: iso(row.clearedAt),
    clear_reason: row.clearReason,
  };
}

/**
 * Sets a switch as `by` (a principal name), audited `switch.set` with its reason. Idempotent on
 * `idem`: the same key and body from the same principal answer the same switch.
 * @throws ApiError 422 `validation_failed` (a target missing, or given for `all`), 422
 *   `idempotency_key_reused`, 503 `audit_unavailable`.
 */
export async function setSwitch(deps: SwitchDeps, input: SetSwitchInput, by: string, idem?: IdempotencyRef | null): Promise<{ switch: KillSwitch; replayed: boolean }> {
  const target = input.target ?? null;
  if ((input.scope === 'all') !== (target === null)) {
    const message = input.scope === 'all' ? 'A switch of scope "all" takes no target.' : `A switch of scope "${input.scope}" needs the ${input.scope} as its target.`;
    throw new ApiError('validation_failed', message, { issues: [{ path: ['target'], code: 'custom', message }] });
  }
  return deps.stores.switches.set(by, idem?.key ?? null, ({ prior }, now) => {
    const { value, replayed } = idempotent(
      idem,
      () => (prior ? { value: prior, requestHash: prior.requestHash, id: prior.id } : undefined),
      (): KillSwitchRow => ({
        id: `ksw_${nextUlid(now)}`,
        scope: input.scope,
        target,
        reason: input.reason,
        setBy: by,
        setAt: now,
        clearedBy: null,
        clearedAt: null,
        clearReason: null,
        idempotencyKey: idem?.key ?? null,
        requestHash: idem?.requestHash ?? null,
      }),
      (p) => `switch ${p.id}`,
    );
    const result = { switch: switchJson(value), replayed };
    if (replayed) return { result };
    return { write: value, audit: [{ actor: by, kind: 'switch.set', subject: value.id, detail: { scope: value.scope, target, reason: value.reason } }], result };
  });
}

/**
 * Clears an active switch as `by`, audited `switch.cleared` with its reason; calls it matched run
 * again from the next request.
 * @throws ApiError 404 `not_found`; 409 `conflict` when it is cleared already; 503 `audit_unavailable`.
 */
export async function clearSwitch(deps: SwitchDeps, id: string, by: string, reason: string): Promise<KillSwitch> {
  return deps.stores.switches.clear(id, (row, now) => {
    if (!row) throw new ApiError('not_found', `No kill switch ${id}.`);
    if (row.clearedAt !== null) throw new ApiError('conflict', `Kill switch ${id} was cleared already (by ${row.clearedBy}).`);
    const patch = { clearedBy: by, clearedAt: now, clearReason: reason };
    return {
      write: patch,
      audit: [{ actor: by, kind: 'switch.cleared', subject: id, detail: { scope: row.scope, target: row.target, reason } }],
      result: switchJson({ ...row, ...patch }),
    };
  });
}

/** What a call is, for matching: its group, provider and action id. */
export interface SwitchedCall {
  group: string;
  provider: string;
  action: string;
}

/** The first of `active` (oldest first) that stops `call`, or undefined. */
export function matchSwitch(active: readonly KillSwitchRow[], call: SwitchedCall): KillSwitchRow | undefined {
  return active.find((s) => s.scope === 'all' || (s.scope === 'group' && s.target === call.group) || (s.scope === 'provider' && s.target === call.provider) || (s.scope === 'action' && s.target === call.action));
}

/**
 * The refusal of a switched-off call: 503 `disabled_by_operator`, naming the switch as `switch`
 * (`{id, scope, target, reason, set_by, since}`).
 */
export function disabledByOperator(row: KillSwitchRow, call: SwitchedCall): ApiError {
  const what = row.scope === 'all' ? 'all external calls' : `the ${row.scope} ${row.target}`;
  const s = switchJson(row);
  return new ApiError(
    'disabled_by_operator',
    `An operator switched off ${what} (kill switch ${row.id}, set by ${row.setBy} at ${s.since}: ${row.reason}); ${call.action} does not run until it is cleared.`,
    { switch: { id: s.id, scope: s.scope, target: s.target, reason: s.reason, set_by: s.set_by, since: s.since } },
  );
}
