/** The request parameters and response shapes of the access-request routes, as OpenAPI components. */
import { z } from 'zod';
import { GRANT_STATUSES, GrantSchema, TimelineEntrySchema } from '../../grants/routes/schemas.js';

/** A request id: `grq_` and a ULID. */
export const GrantRequestId = z.string().regex(/^grq_[0-9A-HJKMNP-TV-Z]{26}$/, 'a grant request id is grq_ and a ULID');

/** The `{id}` of the request routes (any string: an unknown id is 404 `not_found`). */
export const GrantRequestIdParams = z.object({ id: z.string().describe('A grant request id, `grq_<ULID>`.') });

/** Request statuses; `expired` is effective from `pending_expires_at` on. */
export const GRANT_REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;

/** An access request as the API answers it (`GrantRequestRecord` in records.ts): times RFC 3339 UTC, `status` effective now. */
export const GrantRequestSchema = z
  .strictObject({
    id: z.string().describe('`grq_<ULID>`'),
    group: z.string().describe('The requesting agent group.'),
    provider: z.string(),
    level: z.union([z.literal(1), z.literal(2), z.literal(3)]),
    allowed_actions: z.array(z.string()).nullable().describe('Action patterns; null only on a renewal of a grant without an allow list.'),
    denied_actions: z.array(z.string()).nullable().describe('Copied from the renewed grant; null on a new request.'),
    resources: z.array(z.string()).nullable().describe('Resource patterns; null only on a renewal of a grant for any resource.'),
    ttl_s: z.number().int().describe("The grant's lifetime after activation, in seconds."),
    justification: z.string(),
    renews: z.string().nullable().describe('The grant this request renews, if any.'),
    renewal_of: z.string().nullable().describe('The grant this request extends in place (approval renews it), if any.'),
    status: z.enum(GRANT_REQUEST_STATUSES),
    created_at: z.iso.datetime(),
    pending_expires_at: z.iso.datetime().describe('When the request expires if nobody decides.'),
    decided_by: z.string().nullable(),
    decided_at: z.iso.datetime().nullable(),
    decision_reason: z.string().nullable(),
    grant_id: z.string().nullable().describe('The grant the approval created.'),
  })
  .meta({ id: 'GrantRequest' });

/** A request with its grant's status now and its `timeline`, as `GET /v1/grant-requests/{id}` answers it. */
export const GrantRequestDetailSchema = GrantRequestSchema.extend({
  grant_status: z.enum(GRANT_STATUSES).nullable().describe("The status of the grant the approval created, now (null before one exists)."),
  timeline: z.array(TimelineEntrySchema),
}).meta({ id: 'GrantRequestDetail' });

/** What an approval answers: the request, and the grant it created (L3: `pending_approval` until its two approvals). */
export const ApprovedRequestSchema = z.strictObject({ request: GrantRequestSchema, grant: GrantSchema }).meta({ id: 'ApprovedGrantRequest' });
