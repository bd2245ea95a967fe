/**
 * A grant's terms: their request shape, the rules they must meet (ceilings, expiry bounds, known
 * provider and actions) and the digest approvals sign.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import type { Catalog } from '../calls/catalog.js';
import type { ActionLevel } from '../../providers/contract.js';
import { ApiError } from '../../platform/http/problem.js';
import { GroupName, type Groups } from '../identity/groups.js';

/** L2 and L3 grants expire at most this long after activation (ms): 7 days. */
export const MAX_EXPIRY_MS = 7 * 24 * 3600 * 1000;

/** An action pattern: an action id, or a prefix ending in `*` (`github.*`, `github.get_*`). */
export const ActionPattern = z
  .string()
  .max(200)
  .regex(/^(?:[A-Za-z0-9_.:-]+\*?|\*)$/, 'action patterns are an action id, optionally ending in "*"');
/** A resource pattern such as `acme/api` or `acme/*`; `*` may only end it. */
export const ResourcePattern = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^*\s]*\*?$/, 'resource patterns have no spaces and may only end in "*"');

/** A provider name: a lowercase identifier (`github`, `gcp`). */
export const ProviderName = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'provider names are lowercase identifiers');

/** A level as `1`–`3` or `"L1"`–`"L3"`. */
export const GrantLevel = z.union([
  z.number().int().min(1).max(3),
  z.enum(['L1', 'L2', 'L3']).transform((l) => Number(l.slice(1))),
]) as z.ZodType<ActionLevel, number | 'L1' | 'L2' | 'L3'>;

const patterns = <T extends z.ZodType<string>>(item: T) => z.array(item).min(1).max(100).nullable();

/** The terms a caller may set. `ttl_s` (after activation) and `expires_at` are exclusive. */
const TermsShape = {
  level: GrantLevel,
  allowed_actions: patterns(ActionPattern).default(null),
  denied_actions: patterns(ActionPattern).default(null),
  resources: patterns(ResourcePattern).default(null),
  reason: z.string().trim().min(1).max(1000),
  /** Lifetime after activation, in seconds. */
  ttl_s: z.number().int().positive().optional(),
  /** Absolute expiry, RFC 3339 with an offset. */
  expires_at: z.iso.datetime({ offset: true }).optional(),
};

/** `POST /v1/grants` body. */
export const CreateGrantBody = z
  .strictObject({
    group: GroupName,
    provider: ProviderName,
    ...TermsShape,
  })
  .refine((b) => b.ttl_s === undefined || b.expires_at === undefined, { message: 'give ttl_s or expires_at, not both', path: ['expires_at'] });
/** A validated create request. */
export type CreateGrantInput = z.infer<typeof CreateGrantBody>;

/**
 * `PATCH /v1/grants/{id}` body: new values for some terms of a pending grant. `ttl_s: null` or
 * `expires_at: null` clears that form of expiry.
 */
export const AmendGrantBody = z
  .strictObject({
    level: GrantLevel.optional(),
    allowed_actions: patterns(ActionPattern).optional(),
    denied_actions: patterns(ActionPattern).optional(),
    resources: patterns(ResourcePattern).optional(),
    reason: TermsShape.reason.optional(),
    ttl_s: z.number().int().positive().nullable().optional(),
    expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one term to change')
  .refine((b) => !(typeof b.ttl_s === 'number' && typeof b.expires_at === 'string'), { message: 'give ttl_s or expires_at, not both', path: ['expires_at'] });
/** A validated amendment. */
export type AmendGrantInput = z.infer<typeof AmendGrantBody>;

/**
 * Terms after validation and normalisation (patterns deduplicated and sorted; L2/L3 without an
 * expiry get the 7-day maximum as `ttlS`). Times are Unix ms.
 */
export interface GrantTerms {
  group: string;
  provider: string;
  level: ActionLevel;
  allowedActions: string[] | null;
  deniedActions: string[] | null;
  resources: string[] | null;
  reason: string;
  /** Seconds after activation; null when `expiresAt` is absolute or there is no expiry. */
  ttlS: number | null;
  /** Absolute expiry; null when `ttlS` or no expiry. */
  expiresAt: number | null;
}

/** What validation needs: the groups policy (ceilings) and the action catalog. */
export interface TermsDeps {
  groups: Groups;
  catalog: Catalog;
}

/**
 * Checks and normalises terms at `nowMs` (the earliest possible activation).
 * @throws ApiError 422 `validation_failed` (unknown group, provider or action id; an expiry not in
 *   the future), 422 `level_above_ceiling` (above the group's ceiling in `policies/groups.json`),
 *   422 `expiry_too_long` (L2/L3 more than 7 days after activation).
 */
export function validateTerms(deps: TermsDeps, t: GrantTerms, nowMs: number): GrantTerms {
  const group = deps.groups.get(t.group);
  if (!group) throw invalid('group', `Unknown group "${t.group}"; groups: ${[...deps.groups.keys()].join(', ')}.`);
  if (t.level > group.ceiling) {
    throw new ApiError('level_above_ceiling', `The ${t.group} group's ceiling is L${group.ceiling}; it cannot be granted L${t.level}.`, {
      ceiling: group.ceiling,
      level: t.level,
    });
  }
  const provider = deps.catalog.providers.find((p) => p.name === t.provider);
  if (!provider) throw invalid('provider', `Unknown provider "${t.provider}"; providers: ${deps.catalog.providers.map((p) => p.name).join(', ') || 'none'}.`);
  for (const [field, list] of [['allowed_actions', t.allowedActions], ['denied_actions', t.deniedActions]] as const) {
    for (const pattern of list ?? []) {
      if (pattern.endsWith('*')) {
        if (pattern !== '*' && !pattern.startsWith(`${t.provider}.`)) throw invalid(field, `The pattern "${pattern}" must start with "${t.provider}.".`);
      } else if (deps.catalog.get(pattern)?.provider !== provider) {
        throw invalid(field, `"${pattern}" is not an action of the ${t.provider} provider.`);
      }
    }
  }
  if (t.expiresAt !== null && t.expiresAt <= nowMs) throw invalid('expires_at', 'expires_at must be in the future.');
  const terms: GrantTerms = { ...t };
  if (t.level >= 2) {
    if (t.ttlS === null && t.expiresAt === null) terms.ttlS = MAX_EXPIRY_MS / 1000;
    const span = terms.ttlS !== null ? terms.ttlS * 1000 : terms.expiresAt! - nowMs;
    if (span > MAX_EXPIRY_MS) {
      throw new ApiError('expiry_too_long', `An L${t.level} grant expires at most 7 days (604800 s) after activation; this one asks for ${Math.ceil(span / 1000)} s.`, {
        max_s: MAX_EXPIRY_MS / 1000,
      });
    }
  }
  return terms;
}

/**
 * The digest approvals sign: sha256 hex of the RFC 8785 canonical JSON of
 * `{group, provider, level, actions: {allowed, denied}, resources, expiry, reason}`, where
 * `expiry` is `{ttl_s}`, `{expires_at}` (RFC 3339 UTC, ms) or null. Any change of terms changes it.
 */
export function termsDigest(t: GrantTerms): string {
  const expiry = t.ttlS !== null ? { ttl_s: t.ttlS } : t.expiresAt !== null ? { expires_at: new Date(t.expiresAt).toISOString() } : null;
  const canonical = canonicalize({
    group: t.group,
    provider: t.provider,
    level: t.level,
    actions: { allowed: t.allowedActions, denied: t.deniedActions },
    resources: t.resources,
    expiry,
    reason: t.reason,
  });
  return createHash('sha256').update(canonical!).digest('hex');
}

/** Deduplicates and sorts a pattern list (order carries no meaning); null stays null. */
export function normalizePatterns(list: readonly string[] | null): string[] | null {
  return list === null ? null : [...new Set(list)].sort();
}

/**
 * When a grant activated at `activatedAt` stops working: `activatedAt + ttl_s` or the absolute
 * `expiresAt`; null = never (L1 without an expiry).
 */
export function expiryAt(t: Pick<GrantTerms, 'ttlS' | 'expiresAt'>, activatedAt: number): number | null {
  return t.ttlS !== null ? activatedAt + t.ttlS * 1000 : t.expiresAt;
}

function invalid(field: string, message: string): ApiError {
  return new ApiError('validation_failed', message, { issues: [{ path: [field], code: 'custom', message }] });
}
