/**
 * The grants service (issue 4, "Grants", "Two-man rule"): create, amend, approve, revoke, read.
 * Routes and the CLI both call it. Every change and its audit row commit in one transaction.
 */
import { and, asc, eq, gt, inArray, isNull, lte, or, type SQL } from 'drizzle-orm';
import { monotonicFactory } from 'ulid';
import { activitiesFor, appendActivity, type Activity } from '../../platform/audit/trail.js';
import { immediate } from '../../platform/db/open.js';
import type { Deps } from '../../app/deps.js';
import { ApiError } from '../../platform/http/problem.js';
import type { ActionLevel } from '../../providers/contract.js';
import { approvalInvalid, verifyApproval, type Approver, type ApprovalPayload } from './approvers.js';
import { requireEligible } from './eligibility.js';
import { grantApprovals, grants } from './schema.js';
import { expiryAt, normalizePatterns, termsDigest, validateTerms, type AmendGrantInput, type CreateGrantInput, type GrantTerms } from './terms.js';
import type { GrantStatus } from './types.js';

/** What the service runs on. */
export type GrantDeps = Pick<Deps, 'db' | 'clock' | 'groups' | 'catalog' | 'config'>;

/** L3 grants need this many approvals, from distinct approvers in distinct groups. */
export const APPROVALS_REQUIRED = 2;

type GrantRow = typeof grants.$inferSelect;
type ApprovalRow = typeof grantApprovals.$inferSelect;

/** One signed decision on a grant, as the API shows it. `counts` = it signs the current terms. */
export interface ApprovalRecord {
  approver_id: string;
  approver_group: string;
  decision: 'approve' | 'deny';
  grant_digest: string;
  counts: boolean;
  at: string;
}

/** A grant as the API shows it. Times are RFC 3339 UTC; `status` is effective at the clock's now. */
export interface GrantRecord {
  id: string;
  group: string;
  provider: string;
  level: ActionLevel;
  allowed_actions: string[] | null;
  denied_actions: string[] | null;
  resources: string[] | null;
  reason: string;
  requested_by: string;
  status: GrantStatus;
  /** Requested lifetime after activation, in seconds (null: absolute `expires_at` or none). */
  ttl_s: number | null;
  /** sha256 of the canonical terms; what approvers sign. */
  digest: string;
  created_at: string;
  activated_at: string | null;
  expires_at: string | null;
  pending_expires_at: string | null;
  rejected_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  approvals_required: number;
  approvals: ApprovalRecord[];
}

/** One audit row of a grant's history, oldest first. */
export interface TimelineEntry {
  seq: number;
  ts: string;
  actor: string;
  kind: string;
  detail: Record<string, unknown>;
}

const nextUlid = monotonicFactory();
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const json = (list: string[] | null): string | null => (list === null ? null : JSON.stringify(list));
const list = (text: string | null): string[] | null => (text === null ? null : (JSON.parse(text) as string[]));

/**
 * The status a grant has at `nowMs`: stored `active` past `expires_at`, or `pending_approval` past
 * `pending_expires_at`, is `expired` from that exact instant.
 */
export function effectiveStatus(row: Pick<GrantRow, 'status' | 'expiresAt' | 'pendingExpiresAt'>, nowMs: number): GrantStatus {
  if (row.status === 'active' && row.expiresAt !== null && nowMs >= row.expiresAt) return 'expired';
  if (row.status === 'pending_approval' && row.pendingExpiresAt !== null && nowMs >= row.pendingExpiresAt) return 'expired';
  return row.status as GrantStatus;
}

function termsOf(row: GrantRow): GrantTerms {
  return {
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowedActions: list(row.allowedActions),
    deniedActions: list(row.deniedActions),
    resources: list(row.resources),
    reason: row.reason,
    ttlS: row.ttlS,
    expiresAt: row.requestedExpiresAt,
  };
}

function toRecord(row: GrantRow, approvals: ApprovalRow[], nowMs: number): GrantRecord {
  return {
    id: row.id,
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowed_actions: list(row.allowedActions),
    denied_actions: list(row.deniedActions),
    resources: list(row.resources),
    reason: row.reason,
    requested_by: row.requestedBy,
    status: effectiveStatus(row, nowMs),
    ttl_s: row.ttlS,
    digest: row.digest,
    created_at: iso(row.createdAt)!,
    activated_at: iso(row.activatedAt),
    expires_at: iso(row.expiresAt ?? (row.activatedAt === null ? row.requestedExpiresAt : null)),
    pending_expires_at: iso(row.pendingExpiresAt),
    rejected_at: iso(row.rejectedAt),
    revoked_at: iso(row.revokedAt),
    revoked_by: row.revokedBy,
    revoke_reason: row.revokeReason,
    approvals_required: row.level === 3 ? APPROVALS_REQUIRED : 0,
    approvals: approvals.map((a) => ({
      approver_id: a.approverId,
      approver_group: a.approverGroup,
      decision: a.decision as 'approve' | 'deny',
      grant_digest: a.grantDigest,
      counts: a.grantDigest === row.digest,
      at: iso(a.createdAt)!,
    })),
  };
}

function findRow(deps: GrantDeps, id: string): GrantRow {
  const row = deps.db.orm.select().from(grants).where(eq(grants.id, id)).get();
  if (!row) throw new ApiError('not_found', `No grant ${id}.`);
  return row;
}

function approvalsOf(deps: GrantDeps, id: string): ApprovalRow[] {
  return deps.db.orm.select().from(grantApprovals).where(eq(grantApprovals.grantId, id)).orderBy(asc(grantApprovals.id)).all();
}

/** The creating request's idempotency: its `Idempotency-Key` and the sha256 hex of its body. */
export interface IdempotencyRef {
  key: string;
  requestHash: string;
}

/**
 * Creates a grant. L1/L2 start `active` (activated now); L3 starts `pending_approval` until two
 * approvals arrive, or `config.pendingGrantTtlS` passes. Audited as `grant.created`.
 * With `idem`, a repeat of the same key by the same principal returns the first grant
 * (`replayed: true`) when the body is the same.
 * @param requestedBy the principal (`main`, `operator:<subject>`).
 * @throws ApiError 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long`
 *   (see {@link validateTerms}), 422 `idempotency_key_reused` (same key, other body),
 *   503 `audit_unavailable`.
 */
export function createGrant(deps: GrantDeps, input: CreateGrantInput, requestedBy: string, idem?: IdempotencyRef): { grant: GrantRecord; replayed: boolean } {
  return immediate(deps.db, () => {
    const now = deps.clock.now();
    if (idem) {
      const prior = deps.db.orm
        .select()
        .from(grants)
        .where(and(eq(grants.requestedBy, requestedBy), eq(grants.idempotencyKey, idem.key)))
        .get();
      if (prior) {
        if (prior.requestHash !== idem.requestHash) {
          throw new ApiError('idempotency_key_reused', `The Idempotency-Key "${idem.key}" already created ${prior.id} with a different body; use a new key.`);
        }
        return { grant: toRecord(prior, approvalsOf(deps, prior.id), now), replayed: true };
      }
    }
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
      allowedActions: json(terms.allowedActions),
      deniedActions: json(terms.deniedActions),
      resources: json(terms.resources),
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
    deps.db.orm.insert(grants).values(row).run();
    const grant = toRecord(row, [], now);
    appendActivity(deps.db, { actor: requestedBy, kind: 'grant.created', subject: row.id, detail: auditTerms(grant) }, now);
    return { grant, replayed: false };
  });
}

/**
 * Changes terms of a grant still `pending_approval`. The digest changes, so every earlier
 * approval stops counting (they stay in the record with `counts: false`). Audited as
 * `grant.amended` with the old and new digest. An amendment that changes nothing is a no-op.
 * @param actor the principal making the change; it becomes ineligible to approve.
 * @throws ApiError 404 `not_found`, 409 `grant_not_pending`, and the terms errors of
 *   {@link createGrant}.
 */
export function amendGrant(deps: GrantDeps, id: string, patch: AmendGrantInput, actor: string): GrantRecord {
  return immediate(deps.db, () => {
    const now = deps.clock.now();
    const row = findRow(deps, id);
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
    if (digest === row.digest) return toRecord(row, approvalsOf(deps, id), now);
    const voided = approvalsOf(deps, id).filter((a) => a.grantDigest === row.digest).length;
    deps.db.orm
      .update(grants)
      .set({
        level: terms.level,
        allowedActions: json(terms.allowedActions),
        deniedActions: json(terms.deniedActions),
        resources: json(terms.resources),
        reason: terms.reason,
        ttlS: terms.ttlS,
        requestedExpiresAt: terms.expiresAt,
        digest,
        updatedAt: now,
      })
      .where(eq(grants.id, id))
      .run();
    const grant = toRecord(findRow(deps, id), approvalsOf(deps, id), now);
    appendActivity(
      deps.db,
      { actor, kind: 'grant.amended', subject: id, detail: { ...auditTerms(grant), previous_digest: row.digest, voided_approvals: voided } },
      now,
    );
    return grant;
  });
}

/** What {@link submitApproval} did: recorded one approval, activated, rejected, or replayed. */
export type ApprovalOutcome = 'recorded' | 'activated' | 'rejected' | 'replayed';

/** Codes of refused approvals, which are audited as `grant.approval_refused` before answering. */
const REFUSALS = new Set(['approval_invalid', 'approval_duplicate', 'approver_ineligible', 'grant_not_pending']);

/**
 * Records a signed decision on an L3 grant (two-man rule):
 * - the JWS must verify with a registered approver's key and sign this grant's current digest;
 * - `approve`: the approver must not be the requester (nor an amender), nor of the grant's own
 *   group, nor have approved these terms already, nor share a group with the approval already in
 *   (see {@link requireEligible}); the second approval activates the grant (its expiry counts from now);
 * - `deny`: one signed denial rejects the grant.
 * Submitting the identical JWS again is a no-op (`replayed`). Refusals are audited.
 * @param submittedBy the principal that carried the JWS (audited).
 * @throws ApiError 404 `not_found`, 422 `approval_invalid`, 403 `approver_ineligible`,
 *   409 `approval_duplicate` | `grant_not_pending`, 503 `audit_unavailable`.
 */
export async function submitApproval(deps: GrantDeps, id: string, jws: string, submittedBy: string): Promise<{ grant: GrantRecord; outcome: ApprovalOutcome }> {
  let approverId: string | null = null;
  try {
    const { approver, payload } = await verifyApproval(deps, jws, {
      nowMs: deps.clock.now(),
      clockSkewS: deps.config.clockSkewS,
      maxLifetimeS: deps.config.pendingGrantTtlS,
    });
    approverId = approver.id;
    if (payload.grant_id !== id) throw approvalInvalid(`The approval is for ${payload.grant_id}, not ${id}.`);
    return immediate(deps.db, () => recordDecision(deps, id, jws, approver, payload, submittedBy));
  } catch (err) {
    if (err instanceof ApiError && REFUSALS.has(err.code)) auditRefusal(deps, id, approverId, submittedBy, err);
    throw err;
  }
}

function recordDecision(deps: GrantDeps, id: string, jws: string, approver: Approver, payload: ApprovalPayload, submittedBy: string): { grant: GrantRecord; outcome: ApprovalOutcome } {
  const now = deps.clock.now();
  const row = findRow(deps, id);
  const all = approvalsOf(deps, id);
  if (all.some((a) => a.jws === jws)) return { grant: toRecord(row, all, now), outcome: 'replayed' };
  requirePending(row, now);
  if (payload.grant_digest !== row.digest) {
    throw approvalInvalid('The approval signs other terms than the grant has now (its terms changed); review them and sign again.', {
      current_digest: row.digest,
      signed_digest: payload.grant_digest,
    });
  }
  const current = all.filter((a) => a.grantDigest === row.digest);
  if (current.some((a) => a.approverId === approver.id)) {
    throw new ApiError('approval_duplicate', `Approver ${approver.id} has already decided on these terms; an approver counts once.`);
  }
  if (payload.decision === 'approve') requireEligible(deps.db, row, current, approver);
  deps.db.orm
    .insert(grantApprovals)
    .values({ grantId: id, approverId: approver.id, approverGroup: approver.group, decision: payload.decision, grantDigest: row.digest, jws, createdAt: now })
    .run();
  const actor = `approver:${approver.id}`;
  const detail = { decision: payload.decision, approver_group: approver.group, grant_digest: row.digest, submitted_by: submittedBy };
  appendActivity(deps.db, { actor, kind: 'grant.approval_recorded', subject: id, detail }, now);
  let outcome: ApprovalOutcome = 'recorded';
  if (payload.decision === 'deny') {
    deps.db.orm.update(grants).set({ status: 'rejected', rejectedAt: now, updatedAt: now }).where(eq(grants.id, id)).run();
    appendActivity(deps.db, { actor, kind: 'grant.rejected', subject: id, detail: { approver_group: approver.group } }, now);
    outcome = 'rejected';
  } else if (current.filter((a) => a.decision === 'approve').length + 1 >= APPROVALS_REQUIRED) {
    const expiresAt = expiryAt(termsOf(row), now);
    deps.db.orm.update(grants).set({ status: 'active', activatedAt: now, expiresAt, updatedAt: now }).where(eq(grants.id, id)).run();
    const approvers = [...current.filter((a) => a.decision === 'approve').map((a) => a.approverId), approver.id];
    appendActivity(deps.db, { actor: 'system', kind: 'grant.activated', subject: id, detail: { approvers, expires_at: iso(expiresAt) } }, now);
    outcome = 'activated';
  }
  return { grant: toRecord(findRow(deps, id), approvalsOf(deps, id), now), outcome };
}

function auditRefusal(deps: GrantDeps, id: string, approverId: string | null, submittedBy: string, err: ApiError): void {
  const exists = deps.db.sqlite.prepare('SELECT 1 FROM grants WHERE id = ?').get(id);
  if (!exists) return;
  immediate(deps.db, () =>
    appendActivity(
      deps.db,
      {
        actor: approverId ? `approver:${approverId}` : submittedBy,
        kind: 'grant.approval_refused',
        subject: id,
        detail: { code: err.code, reason: err.detail, submitted_by: submittedBy },
      },
      deps.clock.now(),
    ),
  );
}

/**
 * Revokes a grant (active or pending); the next decision no longer finds it. Audited as
 * `grant.revoked`. Revoking a revoked grant returns it unchanged (`changed: false`).
 * @param actor the principal revoking (`main`, `operator:<subject>`).
 * @throws ApiError 404 `not_found`, 409 `grant_not_revocable` (already expired or rejected),
 *   503 `audit_unavailable`.
 */
export function revokeGrant(deps: GrantDeps, id: string, actor: string, reason: string | null): { grant: GrantRecord; changed: boolean } {
  return immediate(deps.db, () => {
    const now = deps.clock.now();
    const row = findRow(deps, id);
    if (row.status === 'revoked') return { grant: toRecord(row, approvalsOf(deps, id), now), changed: false };
    const status = effectiveStatus(row, now);
    if (status === 'expired' || status === 'rejected') throw new ApiError('grant_not_revocable', `Grant ${id} is ${status}; it grants nothing already.`, { status });
    revokeRow(deps, row, actor, reason, now);
    return { grant: toRecord(findRow(deps, id), approvalsOf(deps, id), now), changed: true };
  });
}

function revokeRow(deps: GrantDeps, row: GrantRow, actor: string, reason: string | null, now: number): void {
  deps.db.orm.update(grants).set({ status: 'revoked', revokedAt: now, revokedBy: actor, revokeReason: reason, updatedAt: now }).where(eq(grants.id, row.id)).run();
  appendActivity(deps.db, { actor, kind: 'grant.revoked', subject: row.id, detail: { group: row.group, provider: row.provider, level: row.level, reason, previous_status: effectiveStatus(row, now) } }, now);
}

/**
 * Break-glass: revokes every active or pending grant of `group` (optionally of one provider) in
 * one transaction, audited per grant and once as `grants.revoked_all` on `group:<group>`.
 * @returns the ids revoked (empty when there were none).
 * @throws ApiError 422 `validation_failed` for an unknown group, 503 `audit_unavailable`.
 */
export function revokeAllGrants(deps: GrantDeps, group: string, actor: string, reason: string | null, provider?: string): string[] {
  if (!deps.groups.has(group)) throw invalidTerm('group', `Unknown group "${group}"; groups: ${[...deps.groups.keys()].join(', ')}.`);
  return immediate(deps.db, () => {
    const now = deps.clock.now();
    const rows = deps.db.orm
      .select()
      .from(grants)
      .where(and(eq(grants.group, group), provider ? eq(grants.provider, provider) : undefined, inArray(grants.status, ['active', 'pending_approval'])))
      .all()
      .filter((r) => effectiveStatus(r, now) !== 'expired');
    for (const row of rows) revokeRow(deps, row, actor, reason, now);
    const ids = rows.map((r) => r.id);
    appendActivity(deps.db, { actor, kind: 'grants.revoked_all', subject: `group:${group}`, detail: { group, provider: provider ?? null, reason, grants: ids } }, now);
    return ids;
  });
}

/** One grant with its approvals and its audit timeline. @throws ApiError 404 `not_found`. */
export function getGrant(deps: GrantDeps, id: string): GrantRecord & { timeline: TimelineEntry[] } {
  const now = deps.clock.now();
  const row = findRow(deps, id);
  const timeline = activitiesFor(deps.db, id).map(timelineEntry);
  return { ...toRecord(row, approvalsOf(deps, id), now), timeline };
}

function timelineEntry(a: Activity): TimelineEntry {
  return { seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail };
}

/** Filters of {@link listGrants}. `at` and `nowMs`-relative statuses are Unix ms. */
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
export function listGrants(deps: GrantDeps, filter: GrantFilter): { items: GrantRecord[]; nextCursor: string | null } {
  const now = deps.clock.now();
  const limit = filter.limit ?? 100;
  const where: (SQL | undefined)[] = [
    filter.group ? eq(grants.group, filter.group) : undefined,
    filter.provider ? eq(grants.provider, filter.provider) : undefined,
    filter.status ? statusCondition(filter.status, now) : undefined,
    filter.at !== undefined ? activeAt(filter.at) : undefined,
    filter.after ? gt(grants.id, filter.after) : undefined,
  ];
  const rows = deps.db.orm.select().from(grants).where(and(...where)).orderBy(asc(grants.id)).limit(limit + 1).all();
  const page = rows.slice(0, limit);
  const approvals = page.length === 0 ? [] : deps.db.orm.select().from(grantApprovals).where(inArray(grantApprovals.grantId, page.map((r) => r.id))).orderBy(asc(grantApprovals.id)).all();
  const items = page.map((r) => toRecord(r, approvals.filter((a) => a.grantId === r.id), now));
  return { items, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null };
}

function statusCondition(status: GrantStatus, now: number): SQL | undefined {
  switch (status) {
    case 'active':
      return and(eq(grants.status, 'active'), or(isNull(grants.expiresAt), gt(grants.expiresAt, now)));
    case 'pending_approval':
      return and(eq(grants.status, 'pending_approval'), gt(grants.pendingExpiresAt, now));
    case 'expired':
      return or(and(eq(grants.status, 'active'), lte(grants.expiresAt, now)), and(eq(grants.status, 'pending_approval'), lte(grants.pendingExpiresAt, now)));
    default:
      return eq(grants.status, status);
  }
}

function activeAt(at: number): SQL | undefined {
  return and(
    lte(grants.activatedAt, at),
    or(isNull(grants.expiresAt), gt(grants.expiresAt, at)),
    or(isNull(grants.revokedAt), gt(grants.revokedAt, at)),
  );
}

function requirePending(row: GrantRow, now: number): void {
  const status = effectiveStatus(row, now);
  if (status !== 'pending_approval') throw new ApiError('grant_not_pending', `Grant ${row.id} is ${status}, not pending approval.`, { status });
}

function invalidTerm(field: string, message: string): ApiError {
  return new ApiError('validation_failed', message, { issues: [{ path: [field], code: 'custom', message }] });
}

/** The terms as audited (no secrets in grants, but the audit trail redacts anyway). */
function auditTerms(g: GrantRecord): Record<string, unknown> {
  return {
    group: g.group,
    provider: g.provider,
    level: g.level,
    allowed_actions: g.allowed_actions,
    denied_actions: g.denied_actions,
    resources: g.resources,
    reason: g.reason,
    ttl_s: g.ttl_s,
    expires_at: g.expires_at,
    status: g.status,
    digest: g.digest,
  };
}
