/**
 * Renewal of an active grant: its expiry moves later, at most 7 days from now (the bound every L2
 * and L3 grant has at activation, here for every level). An L1 or L2 renewal applies at once; an
 * L3 renewal changes the terms its approvers signed (the expiry is part of them), so it waits for
 * two fresh approvals over the new terms (`approvals.ts`), and the grant keeps working under its
 * old expiry meanwhile. Every renewal is a `grant_renewals` row and audited on the grant
 * (`grant.renewed`, `grant.renewal_requested`), so the grant's timeline shows it.
 */
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import { effectiveStatus, iso, requireFound, termsOf, toRecord, type GrantRecord } from './records.js';
import type { GrantDeps } from './deps.js';
import type { GrantChange, GrantPatch, GrantState, RenewalRow } from './store.js';
import { MAX_EXPIRY_MS, termsDigest } from './terms.js';

const nextUlid = monotonicFactory();

/** `POST /v1/grants/{id}/renew` body: the new expiry (`expires_at`, RFC 3339, or `ttl_s` seconds from now) and why. */
export const RenewGrantBody = z
  .strictObject({
    expires_at: z.iso.datetime({ offset: true }).optional().describe('The new expiry, at most 7 days from now.'),
    ttl_s: z.number().int().positive().optional().describe('The new expiry as seconds from now (at most 604800).'),
    reason: z.string().trim().min(1).max(1000),
  })
  .refine((b) => (b.ttl_s === undefined) !== (b.expires_at === undefined), { message: 'give ttl_s or expires_at (one of them)', path: ['expires_at'] });
/** A validated renewal request. */
export type RenewGrantInput = z.infer<typeof RenewGrantBody>;

/** A renewal as the API shows it. Times are RFC 3339 UTC. */
export interface RenewalRecord {
  id: string;
  /** `applied`, `pending_approval` (L3, waiting for two approvals), `superseded`, `rejected`, or `expired` (its approval window closed). */
  status: 'applied' | 'pending_approval' | 'superseded' | 'rejected' | 'expired';
  requested_by: string;
  reason: string;
  previous_expires_at: string | null;
  expires_at: string;
  /** sha256 of the grant's terms with the new expiry: what L3 approvers sign. */
  digest: string;
  created_at: string;
  pending_expires_at: string | null;
  applied_at: string | null;
}

/** The status a renewal has at `nowMs` (a pending one past its window reads `expired`). */
export function renewalStatus(r: RenewalRow, nowMs: number): RenewalRecord['status'] {
  if (r.status === 'pending_approval' && r.pendingExpiresAt !== null && nowMs >= r.pendingExpiresAt) return 'expired';
  return r.status as RenewalRecord['status'];
}

/** A renewal row as the API shows it at `nowMs`. */
export function toRenewalRecord(r: RenewalRow, nowMs: number): RenewalRecord {
  return {
    id: r.id,
    status: renewalStatus(r, nowMs),
    requested_by: r.requestedBy,
    reason: r.reason,
    previous_expires_at: iso(r.previousExpiresAt),
    expires_at: iso(r.expiresAt)!,
    digest: r.digest,
    created_at: iso(r.createdAt)!,
    pending_expires_at: iso(r.pendingExpiresAt),
    applied_at: iso(r.appliedAt),
  };
}

/** The renewal of `renewals` still waiting for approvals at `nowMs` (the latest), or undefined. */
export function pendingRenewal(renewals: readonly RenewalRow[], nowMs: number): RenewalRow | undefined {
  return [...renewals].reverse().find((r) => renewalStatus(r, nowMs) === 'pending_approval');
}

/** What {@link renewGrant} did: `renewed` (applied now) or `pending_approval` (L3: two approvals still needed). */
export type RenewalOutcome = 'renewed' | 'pending_approval';

/**
 * Extends the expiry of an active grant to `expires_at` (or now + `ttl_s`): later than the current
 * expiry, at most 7 days from now. L1/L2: applied now, audited `grant.renewed` with
 * `{previous_expires_at, expires_at, reason, renewal_id}`. L3: recorded `pending_approval` (audited
 * `grant.renewal_requested` with the digest to sign; an older pending renewal is `superseded`);
 * the grant keeps its old expiry until two approvers sign the new terms. With `idem`, a repeat of
 * the same key by the same principal answers the first renewal (`replayed: true`).
 * @param actor the principal asking (`operator:<subject>`, `main`); it cannot approve an L3 renewal.
 * @throws ApiError 404 `not_found`, 409 `grant_not_renewable` (revoked, expired, rejected or
 *   pending: only an active grant is renewed; `grant_status`), 422 `expiry_too_long` (beyond 7 days from
 *   now), 422 `validation_failed` (not later than the current expiry), 422 `idempotency_key_reused`,
 *   503 `audit_unavailable`.
 */
export function renewGrant(
  deps: GrantDeps,
  id: string,
  input: RenewGrantInput,
  actor: string,
  idem?: IdempotencyRef,
): Promise<{ grant: GrantRecord; renewal: RenewalRecord; outcome: RenewalOutcome; replayed: boolean }> {
  return deps.stores.grants.change(id, (current, now) => {
    const state = requireFound(current, id);
    const { value, replayed } = idempotent(
      idem,
      () => {
        const prior = idem ? state.renewals.find((r) => r.requestedBy === actor && r.idempotencyKey === idem.key) : undefined;
        if (!prior) return undefined;
        const result = { grant: toRecord(state.row, state.approvals, now), renewal: toRenewalRecord(prior, now), outcome: prior.status === 'pending_approval' ? ('pending_approval' as const) : ('renewed' as const) };
        return { value: { result }, requestHash: prior.requestHash, id: prior.id };
      },
      () => renewalPlan(deps, state, input, actor, idem, now),
      (p) => `renewal ${p.id}`,
    );
    return { ...value, result: { ...value.result, replayed } };
  });
}

function renewalPlan(
  deps: GrantDeps,
  state: GrantState,
  input: RenewGrantInput,
  actor: string,
  idem: IdempotencyRef | undefined,
  now: number,
): Planned<GrantChange, { grant: GrantRecord; renewal: RenewalRecord; outcome: RenewalOutcome }> {
  const { row, approvals } = state;
  const status = effectiveStatus(row, now);
  if (status !== 'active') {
    throw new ApiError('grant_not_renewable', `Grant ${row.id} is ${status}; only an active grant is renewed. Create a new grant instead.`, { grant_status: status });
  }
  const expiresAt = input.expires_at !== undefined ? Date.parse(input.expires_at) : now + input.ttl_s! * 1000;
  if (expiresAt - now > MAX_EXPIRY_MS) {
    throw new ApiError('expiry_too_long', `A grant is renewed for at most 7 days (604800 s) from now; this renewal asks for ${Math.ceil((expiresAt - now) / 1000)} s.`, {
      max_s: MAX_EXPIRY_MS / 1000,
    });
  }
  if (row.expiresAt === null || expiresAt <= row.expiresAt) {
    const message =
      row.expiresAt === null
        ? `Grant ${row.id} never expires; there is nothing to renew.`
        : `The new expiry must be later than the grant's current one (${iso(row.expiresAt)}).`;
    throw new ApiError('validation_failed', message, { issues: [{ path: ['expires_at'], code: 'custom', message }] });
  }
  const digest = termsDigest({ ...termsOf(row), ttlS: null, expiresAt });
  const l3 = row.level === 3;
  const renewal: RenewalRow = {
    id: `rnw_${nextUlid(now)}`,
    grantId: row.id,
    requestedBy: actor,
    reason: input.reason,
    previousExpiresAt: row.expiresAt,
    expiresAt,
    digest,
    status: l3 ? 'pending_approval' : 'applied',
    createdAt: now,
    pendingExpiresAt: l3 ? now + deps.config.pendingGrantTtlS * 1000 : null,
    appliedAt: l3 ? null : now,
    idempotencyKey: idem?.key ?? null,
    requestHash: idem?.requestHash ?? null,
  };
  const detail = { renewal_id: renewal.id, previous_expires_at: iso(row.expiresAt), expires_at: iso(expiresAt), reason: input.reason, digest };
  if (l3) {
    const superseded = state.renewals.filter((r) => renewalStatus(r, now) === 'pending_approval').map((r) => r.id);
    const audit: ActivityInput[] = [{ actor, kind: 'grant.renewal_requested', subject: row.id, detail: { ...detail, superseded, pending_expires_at: iso(renewal.pendingExpiresAt) } }];
    return {
      write: { renewal: { insert: renewal, update: [{ ids: superseded, set: { status: 'superseded' } }] } },
      audit,
      result: { grant: toRecord(row, approvals, now, renewal), renewal: toRenewalRecord(renewal, now), outcome: 'pending_approval' },
    };
  }
  const set = renewedPatch(digest, expiresAt, now);
  return {
    write: { set, renewal: { insert: renewal } },
    audit: [{ actor, kind: 'grant.renewed', subject: row.id, detail }],
    result: { grant: toRecord({ ...row, ...set }, approvals, now), renewal: toRenewalRecord(renewal, now), outcome: 'renewed' },
  };
}

/** The grant columns a renewal to `expiresAt` changes: the expiry becomes absolute, and the digest that of the new terms. */
export function renewedPatch(digest: string, expiresAt: number, now: number): GrantPatch {
  return { ttlS: null, requestedExpiresAt: expiresAt, expiresAt, digest, updatedAt: now };
}
