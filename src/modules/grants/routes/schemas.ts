/** The request parameters and response shapes of the grant routes, as OpenAPI components. */
import { z } from 'zod';

/** A grant id: `grt_` and a ULID. */
export const GrantId = z.string().regex(/^grt_[0-9A-HJKMNP-TV-Z]{26}$/, 'a grant id is grt_ and a ULID');

/** The `{id}` of the grant routes (any string: an unknown id is 404 `not_found`). */
export const GrantIdParams = z.object({ id: z.string().describe('A grant id, `grt_<ULID>`.') });

/** Grant lifecycle statuses; `expired` is effective from the exact expiry instant. */
export const GRANT_STATUSES = ['pending_approval', 'active', 'rejected', 'expired', 'revoked'] as const;

/** One approver's signed decision on a grant (`ApprovalRecord` in service.ts). */
export const ApprovalSchema = z
  .strictObject({
    approver_id: z.string(),
    approver_group: z.string(),
    decision: z.enum(['approve', 'deny']),
    grant_digest: z.string().describe('The terms digest the approver signed.'),
    counts: z.boolean().describe('True while the grant still has the terms this approval signed.'),
    at: z.iso.datetime(),
  })
  .meta({ id: 'Approval' });

/** An L3 renewal waiting for approvals (`PendingRenewal` in records.ts). */
export const PendingRenewalSchema = z
  .strictObject({
    id: z.string().describe('`rnw_<ULID>`'),
    expires_at: z.iso.datetime().describe('The expiry the renewal asks for.'),
    digest: z.string().describe('sha256 of the terms with that expiry: what approvers sign.'),
    requested_by: z.string(),
    reason: z.string(),
    pending_expires_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'PendingRenewal' });

/** A grant as the API answers it (`GrantRecord` in service.ts): times RFC 3339 UTC, `status` effective now. */
export const GrantSchema = z
  .strictObject({
    id: z.string().describe('`grt_<ULID>`'),
    group: z.string(),
    provider: z.string(),
    level: z.union([z.literal(1), z.literal(2), z.literal(3)]),
    allowed_actions: z.array(z.string()).nullable().describe('Action patterns; null = every action of the provider up to `level`.'),
    denied_actions: z.array(z.string()).nullable().describe('Checked before the allow list (deny-wins).'),
    resources: z.array(z.string()).nullable().describe('Resource patterns; null = any resource.'),
    reason: z.string(),
    requested_by: z.string(),
    status: z.enum(GRANT_STATUSES),
    ttl_s: z.number().int().nullable().describe('Lifetime after activation, in seconds.'),
    digest: z.string().describe('sha256 of the canonical terms: what approvers sign.'),
    created_at: z.iso.datetime(),
    activated_at: z.iso.datetime().nullable(),
    expires_at: z.iso.datetime().nullable(),
    pending_expires_at: z.iso.datetime().nullable(),
    rejected_at: z.iso.datetime().nullable(),
    revoked_at: z.iso.datetime().nullable(),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
    approvals_required: z.number().int().min(0),
    approvals: z.array(ApprovalSchema),
    renewal: PendingRenewalSchema.nullable().describe('An L3 renewal waiting for two approvals over its digest; the grant keeps its old expiry until then.'),
  })
  .meta({ id: 'Grant' });

/** One audit row of a grant's history. */
export const TimelineEntrySchema = z
  .strictObject({ seq: z.number().int(), ts: z.iso.datetime(), actor: z.string(), kind: z.string(), detail: z.record(z.string(), z.unknown()) })
  .meta({ id: 'TimelineEntry' });

/** A grant with its `timeline` (audit rows, oldest first), as `GET /v1/grants/{id}` answers it. */
export const GrantDetailSchema = GrantSchema.extend({ timeline: z.array(TimelineEntrySchema) }).meta({ id: 'GrantDetail' });
