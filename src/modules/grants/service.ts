/**
 * The grants service: create, amend, revoke (one, or all of a group: break-glass) and read.
 * Routes and the CLI both call it; approvals are in `approvals.ts`. Each change and its audit
 * rows commit in one transaction of the {@link GrantStore}; the rules are decided here, inside
 * it, by the plans passed to the store.
 */
import { monotonicFactory } from 'ulid';
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import { auditTerms, effectiveStatus, jsonList, requireFound, requirePending, termsOf, timelineEntry, toRecord, type GrantRecord, type TimelineEntry } from './records.js';
import type { GrantPatch, GrantRow, GrantStore } from './store.js';
import { expiryAt, normalizePatterns, termsDigest, validateTerms, type AmendGrantInput, type CreateGrantInput, type GrantTerms } from './terms.js';
import type { GrantStatus } from './types.js';
import { pendingRenewal } from './renewal.js';
import type { GrantDeps } from './deps.js';

export type { GrantDeps } from './deps.js';

const nextUlid = monotonicFactory();

/**
 * Creates a grant. L1/L2 start `active` (activated now); L3 starts `pending_approval` until two
 * approvals arrive, or `config.pendingGrantTtlS` passes. Audited as `grant.created`.
 * With `idem`, a repeat of the same key by the same principal returns the first grant
 * (`replayed: true`) when the body is the same (`idempotent()`).
 * @param requestedBy the principal (`main`, `operator:<subject>`).
 * @throws ApiError 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long`
 *   (see {@link validateTerms}), 422 `idempotency_key_reused` (same key, other body),
 *   503 `audit_unavailable`.
 */
export function createGrant(deps: GrantDeps, input: CreateGrantInput, requestedBy: string, idem?: IdempotencyRef): Promise<{ grant: GrantRecord; replayed: boolean }> {
  return deps.stores.grants.create(requestedBy, idem?.key ?? null, (prior, now) => {
    const { value, replayed } = idempotent(
      idem,
      () => (prior ? { value: { result: toRecord(prior.row, prior.approvals, now) }, requestHash: prior.row.requestHash, id: prior.row.id } : undefined),
      () => newGrant(deps, input, requestedBy, idem, now),
      (p) => `grant ${p.id}`,
    );
    return { ...value, result: { grant: value.result, replayed } };
  });
}

function newGrant(deps: GrantDeps, input: CreateGrantInput, requestedBy: string, idem: IdempotencyRef | undefined, now: number): Planned<GrantRow, GrantRecord> {
  const terms = validateTerms(
    deps,
    {
      group: input.group,
      provider: input.provider,
      level: input.level,
      allowedActions: normalizePatterns(input.allowed_actions),
      deniedActions: normalizePatterns(input.denied_actions),
      resources: normalizePatterns(input.resources),
      reason: input.reason,
      ttlS: input.ttl_s ?? null,
      expiresAt: input.expires_at === undefined ? null : Date.parse(input.expires_at),
    },
    now,
  );
  const pending = terms.level === 3;
  const row: GrantRow = {
    id: `grt_${nextUlid(now)}`,
    group: terms.group,
    provider: terms.provider,
    level: terms.level,
    allowedActions: jsonList(terms.allowedActions),
    deniedActions: jsonList(terms.deniedActions),
    resources: jsonList(terms.resources),
    reason: terms.reason,
    requestedBy,
    status: pending ? 'pending_approval' : 'active',
    ttlS: terms.ttlS,
    requestedExpiresAt: terms.expiresAt,
    digest: termsDigest(terms),
    createdAt: now,
    updatedAt: now,
    activatedAt: pending ? null : now,
    expiresAt: pending ? null : expiryAt(terms, now),
    pendingExpiresAt: pending ? now + deps.config.pendingGrantTtlS * 1000 : null,
    rejectedAt: null,
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
    idempotencyKey: idem?.key ?? null,
    requestHash: idem?.requestHash ?? null,
  };
  const grant = toRecord(row, [], now);
  return { write: row, audit: [{ actor: requestedBy, kind: 'grant.created', subject: row.id, detail: auditTerms(grant) }], result: grant };
}

/**
 * Changes terms of a grant still `pending_approval`. The digest changes, so every earlier
 * approval stops counting (they stay in the record with `counts: false`). Audited as
 * `grant.amended` with the old and new digest. An amendment that changes nothing is a no-op.
 * @param actor the principal making the change; it becomes ineligible to approve.
 * @throws ApiError 404 `not_found`, 409 `grant_not_pending`, and the terms errors of
 *   {@link createGrant}.
 */
export function amendGrant(deps: GrantDeps, id: string, patch: AmendGrantInput, actor: string): Promise<GrantRecord> {
  return deps.stores.grants.change(id, (current, now) => {
    const { row, approvals } = requireFound(current, id);
    requirePending(row, now);
    const before = termsOf(row);
    const next: GrantTerms = {
      ...before,
      level: patch.level ?? before.level,
      allowedActions: patch.allowed_actions === undefined ? before.allowedActions : normalizePatterns(patch.allowed_actions),
      deniedActions: patch.denied_actions === undefined ? before.deniedActions : normalizePatterns(patch.denied_actions),
      resources: patch.resources === undefined ? before.resources : normalizePatterns(patch.resources),
      reason: patch.reason ?? before.reason,
    };
    if (patch.ttl_s !== undefined || patch.expires_at !== undefined) {
      next.ttlS = patch.ttl_s ?? null;
      next.expiresAt = patch.expires_at == null ? null : Date.parse(patch.expires_at);
    }
    if (next.level !== 3) throw invalidTerm('level', 'A pending grant is L3; create a new grant for a lower level.');
    const terms = validateTerms(deps, next, now);
    const digest = termsDigest(terms);
    if (digest === row.digest) return { result: toRecord(row, approvals, now) };
    const voided = approvals.filter((a) => a.grantDigest === row.digest).length;
    const set: GrantPatch = {
      level: terms.level,
      allowedActions: jsonList(terms.allowedActions),
      deniedActions: jsonList(terms.deniedActions),
      resources: jsonList(terms.resources),
      reason: terms.reason,
      ttlS: terms.ttlS,
      requestedExpiresAt: terms.expiresAt,
      digest,
      updatedAt: now,
    };
    const grant = toRecord({ ...row, ...set }, approvals, now);
    const detail = { ...auditTerms(grant), previous_digest: row.digest, voided_approvals: voided };
    return { write: { set }, audit: [{ actor, kind: 'grant.amended', subject: id, detail }], result: grant };
  });
}

/**
 * Revokes a grant (active or pending); the next decision no longer finds it. Audited as
 * `grant.revoked`. Revoking a revoked grant returns it unchanged (`changed: false`).
 * @param actor the principal revoking (`main`, `operator:<subject>`).
 * @throws ApiError 404 `not_found`, 409 `grant_not_revocable` (already expired or rejected),
 *   503 `audit_unavailable`.
 */
export function revokeGrant(deps: GrantDeps, id: string, actor: string, reason: string | null): Promise<{ grant: GrantRecord; changed: boolean }> {
  return deps.stores.grants.change<{ grant: GrantRecord; changed: boolean }>(id, (current, now) => {
    const { row, approvals } = requireFound(current, id);
    if (row.status === 'revoked') return { result: { grant: toRecord(row, approvals, now), changed: false } };
    const status = effectiveStatus(row, now);
    if (status === 'expired' || status === 'rejected') throw new ApiError('grant_not_revocable', `Grant ${id} is ${status}; it grants nothing already.`, { grant_status: status });
    const set = revokedPatch(actor, reason, now);
    return { write: { set }, audit: [revokedRow(row, actor, reason, now)], result: { grant: toRecord({ ...row, ...set }, approvals, now), changed: true } };
  });
}

/**
 * Break-glass: revokes every active or pending grant of `group` (optionally of one provider) in
 * one transaction, audited per grant and once as `grants.revoked_all` on `group:<group>`.
 * @returns the ids revoked (empty when there were none).
 * @throws ApiError 422 `validation_failed` for an unknown group, 503 `audit_unavailable`.
 */
export async function revokeAllGrants(deps: GrantDeps, group: string, actor: string, reason: string | null, provider?: string): Promise<string[]> {
  if (!deps.groups.has(group)) throw invalidTerm('group', `Unknown group "${group}"; groups: ${[...deps.groups.keys()].join(', ')}.`);
  return deps.stores.grants.revokeAll(group, provider, (rows, now) => {
    const live = rows.filter((r) => effectiveStatus(r, now) !== 'expired');
    const ids = live.map((r) => r.id);
    const audit: ActivityInput[] = live.map((r) => revokedRow(r, actor, reason, now));
    audit.push({ actor, kind: 'grants.revoked_all', subject: `group:${group}`, detail: { group, provider: provider ?? null, reason, grants: ids } });
    return { write: { ids, set: revokedPatch(actor, reason, now) }, audit, result: ids };
  });
}

function revokedPatch(actor: string, reason: string | null, now: number): GrantPatch {
  return { status: 'revoked', revokedAt: now, revokedBy: actor, revokeReason: reason, updatedAt: now };
}

function revokedRow(row: GrantRow, actor: string, reason: string | null, now: number): ActivityInput {
  return { actor, kind: 'grant.revoked', subject: row.id, detail: { group: row.group, provider: row.provider, level: row.level, reason, previous_status: effectiveStatus(row, now) } };
}

/** One grant with its approvals and its audit timeline. @throws ApiError 404 `not_found`. */
export async function getGrant(deps: GrantDeps, id: string): Promise<GrantRecord & { timeline: TimelineEntry[] }> {
  const now = deps.clock.now();
  const { row, approvals } = requireFound(await deps.stores.grants.get(id), id);
  const renewal = effectiveStatus(row, now) === 'active' ? pendingRenewal(await deps.stores.grants.renewals(id), now) : undefined;
  const timeline = (await deps.stores.grants.timeline(id)).map(timelineEntry);
  return { ...toRecord(row, approvals, now, renewal), timeline };
}

/** Filters of {@link listGrants}. `at` is Unix ms. */
export interface GrantFilter {
  group?: string;
  provider?: string;
  /** Effective status at the clock's now. */
  status?: GrantStatus;
  /** Only grants that were active at this instant (activated, not yet expired, not yet revoked). */
  at?: number;
  /** Page size (default 100). */
  limit?: number;
  /** Cursor: the last id of the previous page. */
  after?: string;
}

/**
 * Lists grants oldest first, filtered, one page at a time.
 * @returns the page and `nextCursor` (null on the last page).
 */
export async function listGrants(deps: GrantDeps, filter: GrantFilter): Promise<{ items: GrantRecord[]; nextCursor: string | null }> {
  const now = deps.clock.now();
  const { grants, more } = await deps.stores.grants.list({ ...filter, limit: filter.limit ?? 100 }, now);
  const items: GrantRecord[] = [];
  for (const g of grants) {
    // Only an active L3 grant can have a renewal waiting (few of them): one read each.
    const waiting = g.row.level === 3 && effectiveStatus(g.row, now) === 'active' ? pendingRenewal(await deps.stores.grants.renewals(g.row.id), now) : undefined;
    items.push(toRecord(g.row, g.approvals, now, waiting));
  }
  return { items, nextCursor: more ? items[items.length - 1]!.id : null };
}

/** 422 `validation_failed` naming one field of the terms. */
function invalidTerm(field: string, message: string): ApiError {
  return new ApiError('validation_failed', message, { issues: [{ path: [field], code: 'custom', message }] });
}
