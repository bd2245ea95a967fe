/**
 * Self-service access requests, as GCP's Privileged Access Manager and Teleport's access requests
 * work: an agent group asks for terms (or to renew one of its grants) with a justification; an
 * operator approves, which creates the grant through the grants service under the grants' own
 * rules (ceiling, expiry bounds, two approvals for L3), or denies with a reason. A request grants
 * nothing by itself, never above the group's ceiling, and expires when nobody decides within
 * `BROKER_GRANT_REQUEST_TTL_S`. The group that asked never decides it.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { monotonicFactory } from 'ulid';
import { withAuditedRefusals } from '../../platform/audit/refusal.js';
import type { Config } from '../../platform/config.js';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError, type ErrorCode } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import { effectiveStatus, termsOf, toRecord, type GrantRecord } from '../grants/records.js';
import { createGrant, type GrantDeps } from '../grants/service.js';
import { renewGrant } from '../grants/renewal.js';
import { jsonList } from '../grants/records.js';
import { normalizePatterns, validateTerms, type CreateGrantInput, type GrantTerms } from '../grants/terms.js';
import { auditRequest, effectiveRequestStatus, grantTermsOf, requireNotRequester, requirePendingRequest, requireRequest, toRequestRecord, type GrantRequestRecord } from './records.js';
import type { GrantRequestRow, GrantRequestStatus, GrantRequestStore } from './store.js';
import { checkRequestTerms, type CreateGrantRequestInput } from './terms.js';

/**
 * What the requests service runs on: everything the grants service does (an approval creates the
 * grant through it), the requests' store, and how long a request waits for a decision
 * (`grantRequestTtlS`, seconds).
 */
export interface GrantRequestDeps extends GrantDeps {
  config: GrantDeps['config'] & Pick<Config, 'grantRequestTtlS'>;
  stores: GrantDeps['stores'] & { grantRequests: GrantRequestStore };
}

/** At most this many pending requests per group; one more is 429 `backpressure` until operators decide some. */
export const MAX_PENDING_REQUESTS_PER_GROUP = 20;

/** The refusals of a decision the trail keeps (`grant_request.decision_refused`): the requester deciding its own request. */
const AUDITED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['separation_of_powers']);

const nextUlid = monotonicFactory();

/** The terms a request carries besides its group, lifetime and justification. */
type AskedTerms = Pick<GrantTerms, 'provider' | 'level' | 'allowedActions' | 'deniedActions' | 'resources'>;

/**
 * Stores a pending request of `group` (the signer), audited as `grant_request.created`. New terms
 * are checked as a grant's would be (`validateTerms`: known provider and action ids, the group's
 * ceiling, L2/L3 at most 7 days) and by `checkRequestTerms` (at most 7 days at any level; exact
 * action ids within the level). A renewal (`renews`) copies the terms of an active grant of the
 * group. With `idem`, a repeat of the same key by the same group returns the first request
 * (`replayed: true`) when the body is the same.
 * @throws ApiError 422 `validation_failed` | `level_above_ceiling` | `expiry_too_long` |
 *   `idempotency_key_reused`, 409 `conflict` (the grant to renew is not active), 429
 *   `backpressure` ({@link MAX_PENDING_REQUESTS_PER_GROUP} pending already), 503 `audit_unavailable`.
 */
export async function createGrantRequest(
  deps: GrantRequestDeps,
  input: CreateGrantRequestInput,
  group: string,
  idem?: IdempotencyRef,
): Promise<{ request: GrantRequestRecord; replayed: boolean }> {
  // Read before the transaction (nothing is awaited inside it); a failure is raised only when the
  // key is new, so a retry of an accepted renewal still replays after the grant changed.
  const renews = input.renews ?? input.renewal_of;
  const renewal = renews === undefined ? null : await renewedTerms(deps, renews, group);
  return deps.stores.grantRequests.create(group, idem?.key ?? null, ({ prior, pending }, now) => {
    const { value, replayed } = idempotent(
      idem,
      () => (prior ? { value: { result: toRequestRecord(prior, now) }, requestHash: prior.requestHash, id: prior.id } : undefined),
      () => newRequest(deps, input, group, renewal, pending, idem, now),
      (p) => `grant request ${p.id}`,
    );
    return { ...value, result: { request: value.result, replayed } };
  });
}

function newRequest(
  deps: GrantRequestDeps,
  input: CreateGrantRequestInput,
  group: string,
  renewal: AskedTerms | ApiError | null,
  pending: number,
  idem: IdempotencyRef | undefined,
  now: number,
): Planned<GrantRequestRow, GrantRequestRecord> {
  if (renewal instanceof ApiError) throw renewal;
  const asked: AskedTerms = renewal ?? {
    provider: input.provider!,
    level: input.level!,
    allowedActions: normalizePatterns(input.allowed_actions!),
    deniedActions: null,
    resources: normalizePatterns(input.resources!),
  };
  const terms = validateTerms(deps, { group, ...asked, reason: input.justification, ttlS: input.ttl_s, expiresAt: null }, now);
  checkRequestTerms(deps.catalog, terms);
  if (pending >= MAX_PENDING_REQUESTS_PER_GROUP) {
    throw new ApiError('backpressure', `The ${group} group has ${pending} pending grant requests already; wait for operators to decide them.`, { pending, limit: MAX_PENDING_REQUESTS_PER_GROUP });
  }
  const row: GrantRequestRow = {
    id: `grq_${nextUlid(now)}`,
    group,
    provider: terms.provider,
    level: terms.level,
    allowedActions: jsonList(terms.allowedActions),
    deniedActions: jsonList(terms.deniedActions),
    resources: jsonList(terms.resources),
    ttlS: input.ttl_s,
    justification: input.justification,
    renews: input.renews ?? null,
    renewalOf: input.renewal_of ?? null,
    status: 'pending',
    createdAt: now,
    updatedAt: now,
    pendingExpiresAt: now + deps.config.grantRequestTtlS * 1000,
    decidedBy: null,
    decidedAt: null,
    decisionReason: null,
    grantId: null,
    idempotencyKey: idem?.key ?? null,
    requestHash: idem?.requestHash ?? null,
  };
  const request = toRequestRecord(row, now);
  return { write: row, audit: [{ actor: group, kind: 'grant_request.created', subject: row.id, detail: auditRequest(request) }], result: request };
}

/** The terms of the grant `id` to renew, or the refusal to raise when the request is new. */
async function renewedTerms(deps: GrantRequestDeps, id: string, group: string): Promise<AskedTerms | ApiError> {
  const found = await deps.stores.grants.get(id);
  if (!found || found.row.group !== group) {
    const message = `No grant ${id} of the ${group} group to renew.`;
    return new ApiError('validation_failed', message, { issues: [{ path: ['renews'], code: 'custom', message }] });
  }
  const status = effectiveStatus(found.row, deps.clock.now());
  if (status !== 'active') return new ApiError('conflict', `Grant ${id} is ${status}; only an active grant is renewed. Ask for new terms instead.`, { grant_status: status });
  const { provider, level, allowedActions, deniedActions, resources } = termsOf(found.row);
  return { provider, level, allowedActions, deniedActions, resources };
}

/**
 * Approves a pending request: it is claimed (`approved`, audited `grant_request.approved`), the
 * grant is created through the grants service as `actor` (L1/L2 active now, L3
 * `pending_approval` until its two approvals; the grants' rules apply again at this instant), and
 * the request is linked to it (`grant_id`, audited `grant_request.granted`). Each step is one
 * transaction and each is idempotent (the grant is created under the Idempotency-Key
 * `grant-request:<id>` of the approver), so an approval interrupted between them is finished by
 * approving again. When the grants refuse the terms now (a ceiling lowered, a provider gone), the
 * request is pending again (audited `grant_request.approval_failed`) and the refusal is answered.
 * Approving an approved request answers it again (`replayed: true`).
 * @param actor the deciding principal (`operator:<subject>`, or `main` for another group's request).
 * @throws ApiError 404 `not_found`, 403 `separation_of_powers` (the requesting group; audited),
 *   409 `grant_request_not_pending` (denied or expired), 409 `conflict` (the renewed grant was
 *   revoked or rejected meanwhile; nothing changes), the grants' 422 codes, 503 `audit_unavailable`.
 */
export async function approveGrantRequest(
  deps: GrantRequestDeps,
  id: string,
  actor: string,
  reason: string | null,
): Promise<{ request: GrantRequestRecord; grant: GrantRecord; replayed: boolean }> {
  const store = deps.stores.grantRequests;
  return withAuditedRefusals(
    AUDITED_REFUSALS,
    async () => {
      // Read before the transaction (nothing is awaited inside it), raised only by a new claim: an
      // approval being finished made its grant already, and must link it whatever happened since.
      const stale = await renewalRefusal(deps, id);
      const claimed = await store.change<GrantRequestRow>(id, (current, now) => {
        const row = requireRequest(current, id);
        requireNotRequester(row, actor);
        if (row.status === 'approved') return { result: row };
        requirePendingRequest(row, now);
        if (stale) throw stale;
        const after: GrantRequestRow = { ...row, status: 'approved', decidedBy: actor, decidedAt: now, decisionReason: reason, updatedAt: now };
        const detail = { ...auditRequest(toRequestRecord(after, now)), reason };
        return { write: { status: 'approved', decidedBy: actor, decidedAt: now, decisionReason: reason, updatedAt: now }, audit: [{ actor, kind: 'grant_request.approved', subject: id, detail }], result: after };
      });
      if (claimed.grantId !== null) {
        return { request: toRequestRecord(claimed, deps.clock.now()), grant: await grantRecord(deps, claimed.grantId), replayed: true };
      }
      const grant = await createClaimedGrant(deps, claimed);
      const request = await store.change<GrantRequestRecord>(id, (current, now) => {
        const row = requireRequest(current, id);
        if (row.grantId !== null) return { result: toRequestRecord(row, now) };
        const detail = { grant_id: grant.id, grant_status: grant.status, level: grant.level };
        return { write: { grantId: grant.id, updatedAt: now }, audit: [{ actor: claimed.decidedBy!, kind: 'grant_request.granted', subject: id, detail }], result: toRequestRecord({ ...row, grantId: grant.id, updatedAt: now }, now) };
      });
      return { request, grant, replayed: false };
    },
    (refusal) => store.recordRefusal(id, { actor, kind: 'grant_request.decision_refused', subject: id, detail: { code: refusal.code, reason: refusal.detail, decision: 'approve' } }),
  );
}

/**
 * Why a pending renewal request must not be approved now, or null: the grant it renews was revoked
 * or rejected since it was asked (409 `conflict`), and approving it must not bring back what an
 * operator took away. Null for other requests.
 */
async function renewalRefusal(deps: GrantRequestDeps, id: string): Promise<ApiError | null> {
  const row = await deps.stores.grantRequests.get(id);
  const renews = row?.renews ?? row?.renewalOf ?? null;
  if (row === null || renews === null || row.status !== 'pending') return null;
  const renewed = await deps.stores.grants.get(renews);
  const status = renewed ? effectiveStatus(renewed.row, deps.clock.now()) : 'revoked';
  if (status !== 'revoked' && status !== 'rejected') return null;
  return new ApiError('conflict', `Grant ${renews}, which this request renews, was ${status}; it is not renewed. Deny the request.`, { grant_status: status });
}

/**
 * Creates the grant of a claimed request as its approver, or finds the one an interrupted approval
 * made (the same Idempotency-Key replays it); on a refusal by the grants (4xx) the claim is undone
 * first.
 */
async function createClaimedGrant(deps: GrantRequestDeps, claimed: GrantRequestRow): Promise<GrantRecord> {
  try {
    if (claimed.renewalOf !== null) {
      // A renewal in place: the grant's expiry moves to now + ttl_s under the same key, so an
      // interrupted approval finishing later replays this renewal instead of renewing twice.
      const input = { ttl_s: claimed.ttlS, reason: `grant request ${claimed.id}: ${claimed.justification}` };
      const requestHash = createHash('sha256').update(canonicalize(input)!).digest('hex');
      return (await renewGrant(deps, claimed.renewalOf, input, claimed.decidedBy!, { key: `grant-request:${claimed.id}`, requestHash })).grant;
    }
    const t = grantTermsOf(claimed);
    const input: CreateGrantInput = {
      group: t.group,
      provider: t.provider,
      level: t.level,
      allowed_actions: t.allowedActions,
      denied_actions: t.deniedActions,
      resources: t.resources,
      reason: t.reason,
      ttl_s: t.ttlS!,
    };
    const requestHash = createHash('sha256').update(canonicalize(input)!).digest('hex');
    return (await createGrant(deps, input, claimed.decidedBy!, { key: `grant-request:${claimed.id}`, requestHash })).grant;
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) await unclaim(deps, claimed, err);
    throw err;
  }
}

/** Puts a claimed request back to pending (no grant was made), audited as `grant_request.approval_failed`. */
function unclaim(deps: GrantRequestDeps, claimed: GrantRequestRow, refusal: ApiError): Promise<void> {
  return deps.stores.grantRequests.change<void>(claimed.id, (current, now) => {
    const row = requireRequest(current, claimed.id);
    if (row.status !== 'approved' || row.grantId !== null) return { result: undefined };
    const detail = { code: refusal.code, reason: refusal.detail };
    return {
      write: { status: 'pending', decidedBy: null, decidedAt: null, decisionReason: null, updatedAt: now },
      audit: [{ actor: claimed.decidedBy!, kind: 'grant_request.approval_failed', subject: row.id, detail }],
      result: undefined,
    };
  });
}

/**
 * Denies a pending request with a reason, audited as `grant_request.denied`. Denying a denied
 * request answers it unchanged.
 * @throws ApiError 404 `not_found`, 403 `separation_of_powers` (the requesting group; audited),
 *   409 `grant_request_not_pending` (approved or expired), 503 `audit_unavailable`.
 */
export function denyGrantRequest(deps: GrantRequestDeps, id: string, actor: string, reason: string): Promise<GrantRequestRecord> {
  const store = deps.stores.grantRequests;
  return withAuditedRefusals(
    AUDITED_REFUSALS,
    () =>
      store.change<GrantRequestRecord>(id, (current, now) => {
        const row = requireRequest(current, id);
        requireNotRequester(row, actor);
        if (row.status === 'denied') return { result: toRequestRecord(row, now) };
        requirePendingRequest(row, now);
        const set = { status: 'denied', decidedBy: actor, decidedAt: now, decisionReason: reason, updatedAt: now };
        const after = toRequestRecord({ ...row, ...set }, now);
        return { write: set, audit: [{ actor, kind: 'grant_request.denied', subject: id, detail: { ...auditRequest(after), reason } }], result: after };
      }),
    (refusal) => store.recordRefusal(id, { actor, kind: 'grant_request.decision_refused', subject: id, detail: { code: refusal.code, reason: refusal.detail, decision: 'deny' } }),
  );
}

/** One audit row of a request's history. */
export interface RequestTimelineEntry {
  seq: number;
  ts: string;
  actor: string;
  kind: string;
  detail: Record<string, unknown>;
}

/** A request with the status of its grant (null before one exists) and its audit timeline. */
export type GrantRequestDetail = GrantRequestRecord & { grant_status: GrantRecord['status'] | null; timeline: RequestTimelineEntry[] };

/**
 * One request, with its grant's status now and its timeline.
 * @param group when given (an agent group reading), only that group's requests are found.
 * @throws ApiError 404 `not_found` (also for another group's request).
 */
export async function getGrantRequest(deps: GrantRequestDeps, id: string, group?: string): Promise<GrantRequestDetail> {
  const row = await deps.stores.grantRequests.get(id);
  if (!row || (group !== undefined && row.group !== group)) throw new ApiError('not_found', `No grant request ${id}${group === undefined ? '' : ` of the ${group} group`}.`);
  const now = deps.clock.now();
  const grant = row.grantId === null ? null : await deps.stores.grants.get(row.grantId);
  const timeline = (await deps.stores.grantRequests.timeline(id)).map((a) => ({ seq: a.seq, ts: a.ts, actor: a.actor, kind: a.kind, detail: a.detail }));
  return { ...toRequestRecord(row, now), grant_status: grant ? effectiveStatus(grant.row, now) : null, timeline };
}

/** Filters of {@link listGrantRequests}. */
export interface GrantRequestFilter {
  group?: string;
  /** Effective status at the clock's now. */
  status?: GrantRequestStatus;
  /** Page size (default 100). */
  limit?: number;
  /** Cursor: the last id of the previous page. */
  after?: string;
}

/**
 * Lists requests oldest first, filtered, one page at a time.
 * @returns the page and `nextCursor` (null on the last page).
 */
export async function listGrantRequests(deps: GrantRequestDeps, filter: GrantRequestFilter): Promise<{ items: GrantRequestRecord[]; nextCursor: string | null }> {
  const now = deps.clock.now();
  const { rows, more } = await deps.stores.grantRequests.list({ ...filter, limit: filter.limit ?? 100 }, now);
  const items = rows.map((r) => toRequestRecord(r, now));
  return { items, nextCursor: more ? items[items.length - 1]!.id : null };
}

/**
 * Stores `expired` on the pending requests past their deadline, each audited as
 * `grant_request.expired` (actor `system`), in batches of `batch`. Their status already reads
 * `expired` from the deadline on; this only records it.
 * @returns how many were expired.
 * @throws ApiError 503 `audit_unavailable` (that batch is rolled back; earlier ones stay).
 */
export async function expireGrantRequests(deps: Pick<GrantRequestDeps, 'stores'>, batch = 500): Promise<number> {
  let total = 0;
  for (;;) {
    const { n, full } = await deps.stores.grantRequests.expireDue(batch, (rows, now) => {
      const due = rows.filter((r) => effectiveRequestStatus(r, now) === 'expired');
      return {
        write: { ids: due.map((r) => r.id), set: { status: 'expired', updatedAt: now } },
        audit: due.map((r) => ({ actor: 'system', kind: 'grant_request.expired', subject: r.id, detail: { group: r.group, pending_expires_at: new Date(r.pendingExpiresAt).toISOString() } })),
        result: { n: due.length, full: rows.length === batch },
      };
    });
    total += n;
    if (!full || n === 0) return total;
  }
}

/** A grant as the API shows it now. @throws ApiError 404 `not_found` when it is gone. */
async function grantRecord(deps: GrantRequestDeps, id: string): Promise<GrantRecord> {
  const found = await deps.stores.grants.get(id);
  if (!found) throw new ApiError('not_found', `No grant ${id}.`);
  return toRecord(found.row, found.approvals, deps.clock.now());
}
