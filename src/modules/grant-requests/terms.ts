/**
 * What an agent group may ask for: the request body, and the checks beyond the grants' own
 * (`validateTerms` in `grants/terms.ts`: ceiling, provider, action ids, the 7-day bound of L2/L3).
 */
import { z } from 'zod';
import { ApiError } from '../../platform/http/problem.js';
import type { Catalog } from '../calls/catalog.js';
import { GrantId } from '../grants/routes/schemas.js';
import { ActionPattern, GrantLevel, MAX_EXPIRY_MS, ProviderName, ResourcePattern, type GrantTerms } from '../grants/terms.js';

/** The longest grant a request may ask for, in seconds (7 days, the grants' bound for L2/L3, here for every level). */
export const MAX_REQUEST_TTL_S = MAX_EXPIRY_MS / 1000;

/** Longest justification, in characters: the grant's `reason` carries it after the request id, within the grants' 1000. */
export const MAX_JUSTIFICATION = 900;

const NEW_TERMS = ['provider', 'level', 'allowed_actions', 'resources'] as const;

/**
 * `POST /v1/grant-requests` body: either new terms (`provider`, `level`, `allowed_actions`,
 * `resources`) or `renews` naming an active grant of the group (its terms are kept), and always
 * `ttl_s` (the grant's lifetime after activation, seconds) and a `justification`.
 */
export const CreateGrantRequestBody = z
  .strictObject({
    provider: ProviderName.optional().describe('The provider, e.g. `github`.'),
    level: GrantLevel.optional().describe('1–3 or "L1"–"L3"; at most the group’s ceiling.'),
    allowed_actions: z.array(ActionPattern).min(1).max(100).optional().describe('Action ids or patterns ending in `*`.'),
    resources: z.array(ResourcePattern).min(1).max(100).optional().describe('Resource patterns such as `acme/api` or `acme/*`.'),
    ttl_s: z.number().int().positive().describe(`The grant's lifetime after activation, in seconds (at most ${MAX_REQUEST_TTL_S}).`),
    justification: z.string().trim().min(1).max(MAX_JUSTIFICATION).describe('Why the group needs it; operators read it. Never put a secret here.'),
    renews: GrantId.optional().describe('An active grant of this group to extend: the new grant keeps its terms, with this ttl_s.'),
    renewal_of: GrantId.optional().describe('An active grant of this group to renew in place: approval extends its expiry to now + ttl_s (L3: once two approvers sign).'),
  })
  .superRefine((b, ctx) => {
    if (b.renews !== undefined && b.renewal_of !== undefined) ctx.addIssue({ code: 'custom', path: ['renewal_of'], message: 'give renews (a new grant) or renewal_of (the same grant, extended), not both' });
    const renews = b.renews ?? b.renewal_of;
    for (const field of NEW_TERMS) {
      if (renews !== undefined && b[field] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: 'a renewal keeps the renewed grant’s terms: give only renews, ttl_s and justification' });
      } else if (renews === undefined && b[field] === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: 'required (or name the grant this request renews in renews)' });
      }
    }
  });
/** A validated request body. */
export type CreateGrantRequestInput = z.infer<typeof CreateGrantRequestBody>;

/**
 * The checks a request adds to the grants' `validateTerms` (which it runs first):
 * - `ttl_s` at most {@link MAX_REQUEST_TTL_S} whatever the level (a request is for a while, never
 *   for good): 422 `expiry_too_long`;
 * - every exact action id at or below the level asked for, so the grant would allow what the group
 *   names: 422 `validation_failed` at `allowed_actions`.
 * @throws ApiError as above.
 */
export function checkRequestTerms(catalog: Catalog, terms: GrantTerms): void {
  if (terms.ttlS !== null && terms.ttlS > MAX_REQUEST_TTL_S) {
    throw new ApiError('expiry_too_long', `A request asks for at most 7 days (${MAX_REQUEST_TTL_S} s); this one asks for ${terms.ttlS} s.`, { max_s: MAX_REQUEST_TTL_S });
  }
  for (const pattern of terms.allowedActions ?? []) {
    const action = pattern.endsWith('*') ? undefined : catalog.get(pattern)?.action;
    if (action !== undefined && action.level > terms.level) {
      const message = `${pattern} is an L${action.level} action; ask for level ${action.level} (within your ceiling) or leave it out.`;
      throw new ApiError('validation_failed', message, { issues: [{ path: ['allowed_actions'], code: 'custom', message }] });
    }
  }
}
