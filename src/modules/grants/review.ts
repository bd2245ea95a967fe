/**
 * Reviewing and signing a grant decision, shared by the two ways `broker approve` signs (README
 * "Walk-through"): on the broker host from the database, and offline on the approver's own
 * machine from the grant JSON `GET /v1/grants/{id}` answers (`--grant-file`). Nothing here opens
 * the database or reads the broker's data directory.
 */
import type { JWK } from 'jose';
import { z } from 'zod';
import { GroupName } from '../identity/groups.js';
import { signApproval } from './approvers.js';
import type { GrantRecord } from './records.js';
import { ActionPattern, ProviderName, ResourcePattern, termsDigest, type GrantTerms } from './terms.js';

/**
 * Thrown by {@link reviewGrantFile} when a grant file cannot be signed; the message says why
 * (invalid fields, a digest that is not the terms', a grant that is not pending). The CLI prints
 * it and exits 1.
 */
export class GrantFileError extends Error {}

const patternList = <T extends z.ZodType<string>>(item: T) => z.array(item).min(1).max(100).nullable();

/**
 * The members of a grant as `GET /v1/grants/{id}` (and `broker grants show`) answers it that an
 * offline signature depends on. Other members (`timeline`, `created_at`, …) are allowed and
 * ignored. `digest` is optional: it is only compared, never trusted.
 */
export const GrantFile = z.looseObject({
  id: z.string().regex(/^grt_[0-9A-Z]{26}$/, 'a grant id is grt_ and a ULID'),
  group: GroupName,
  provider: ProviderName,
  level: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  allowed_actions: patternList(ActionPattern),
  denied_actions: patternList(ActionPattern),
  resources: patternList(ResourcePattern),
  reason: z.string().min(1).max(1000),
  status: z.enum(['pending_approval', 'active', 'rejected', 'expired', 'revoked']),
  ttl_s: z.number().int().positive().nullable(),
  expires_at: z.iso.datetime({ offset: true }).nullable(),
  digest: z.string().optional(),
  requested_by: z.string().optional(),
  activated_at: z.iso.datetime({ offset: true }).nullable().optional(),
  pending_expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  approvals: z
    .array(z.looseObject({ approver_id: z.string(), approver_group: z.string(), decision: z.enum(['approve', 'deny']), counts: z.boolean() }))
    .optional(),
  renewal: z.looseObject({ expires_at: z.iso.datetime({ offset: true }), digest: z.string() }).nullable().optional(),
});
/** A validated grant file. */
export type GrantFileGrant = z.infer<typeof GrantFile>;

/**
 * What {@link describeDecision} prints: the API's member names, as both a `GrantRecord` (from the
 * database) and a {@link GrantFileGrant} (from a file) have them.
 */
export type ReviewedGrant = Pick<GrantRecord, 'id' | 'group' | 'provider' | 'allowed_actions' | 'denied_actions' | 'resources' | 'reason' | 'ttl_s' | 'expires_at'> &
  Partial<Pick<GrantRecord, 'requested_by' | 'pending_expires_at'>> & {
    level: number;
    /** The digest that will be signed. */
    digest: string;
    approvals?: Pick<GrantRecord['approvals'][number], 'approver_id' | 'approver_group' | 'decision' | 'counts'>[];
  };

/**
 * A grant's terms as the API shows them, in the form {@link termsDigest} hashes. The expiry asked
 * for is `ttl_s` when set; otherwise `expires_at` (the absolute expiry asked for, or null). Until a
 * grant is activated the two are exclusive; once activated, `expires_at` is the instant computed
 * from `ttl_s` and is not part of the terms.
 * @throws GrantFileError when a grant never activated has both `ttl_s` and `expires_at`.
 */
export function termsOfGrantFile(g: GrantFileGrant): GrantTerms {
  if (g.ttl_s !== null && g.expires_at !== null && g.activated_at == null) {
    throw new GrantFileError('ttl_s and expires_at are both set; a grant not yet activated has at most one of them (the file was edited)');
  }
  const requestedExpiry = g.ttl_s !== null ? null : g.expires_at;
  return {
    group: g.group,
    provider: g.provider,
    level: g.level,
    allowedActions: g.allowed_actions,
    deniedActions: g.denied_actions,
    resources: g.resources,
    reason: g.reason,
    ttlS: g.ttl_s,
    expiresAt: requestedExpiry === null ? null : Date.parse(requestedExpiry),
  };
}

/**
 * Checks a grant file before an approver signs it offline, in this order:
 * 1. its shape ({@link GrantFile}, the answer of `GET /v1/grants/{id}`);
 * 2. the digest is recomputed from its terms with the server's {@link termsDigest}; a `digest`
 *    member that differs means the file was edited or comes from another broker version;
 * 3. it is an L3 grant in `pending_approval`, whose approval window (`pending_expires_at`, when
 *    present) has not closed at `nowMs`.
 * Patterns are taken as they are (not deduplicated or sorted), so the signature covers exactly
 * the terms shown.
 * @param json the parsed file.
 * @param nowMs the signer's clock (Unix ms).
 * @returns the grant to show, with `digest` = the recomputed digest.
 * @throws GrantFileError naming the invalid fields, the status, or both digests.
 */
export function reviewGrantFile(json: unknown, nowMs: number): ReviewedGrant {
  const parsed = GrantFile.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(file)'}: ${i.message}`).join('; ');
    throw new GrantFileError(`not a grant as GET /v1/grants/{id} answers it: ${issues}`);
  }
  const g = parsed.data;
  const digest = termsDigest(termsOfGrantFile(g));
  if (g.digest !== undefined && g.digest !== digest) {
    throw new GrantFileError(
      `the file's digest ${g.digest} is not the digest of its terms (${digest}): the file was edited, or comes from another broker version; fetch the grant again`,
    );
  }
  if (g.status === 'active' && g.level === 3 && g.renewal) {
    // A renewal waiting for approvals: the signature covers the terms with the new expiry.
    const renewed = { ...g, ttl_s: null, expires_at: g.renewal.expires_at };
    const renewalDigest = termsDigest({ ...termsOfGrantFile({ ...renewed, activated_at: null }) });
    if (renewalDigest !== g.renewal.digest) {
      throw new GrantFileError(`the renewal's digest ${g.renewal.digest} is not the digest of the terms with its expiry (${renewalDigest}): the file was edited; fetch the grant again`);
    }
    return { ...renewed, digest: renewalDigest };
  }
  if (g.status !== 'pending_approval') throw new GrantFileError(`grant ${g.id} is ${g.status}, not pending_approval; there is nothing to approve`);
  if (g.level !== 3) throw new GrantFileError(`grant ${g.id} is L${g.level}; only L3 grants take approvals`);
  if (g.pending_expires_at != null && Date.parse(g.pending_expires_at) <= nowMs) {
    throw new GrantFileError(`grant ${g.id} waited for approvals until ${g.pending_expires_at}; it has expired`);
  }
  return { ...g, digest };
}

const show = (v: string | null | undefined): string => (v == null ? '-' : JSON.stringify(v));
const showList = (list: string[] | null, none: string): string => (list === null ? none : list.map((p) => JSON.stringify(p)).join(', '));

/**
 * The human-readable terms a signature covers, several lines ending in a newline, for stderr.
 * Strings are printed JSON-quoted, so a reason cannot fake lines or terminal escapes.
 */
export function describeDecision(g: ReviewedGrant, decision: 'approve' | 'deny'): string {
  const expiry = g.ttl_s !== null ? `${g.ttl_s} s after activation` : g.expires_at !== null ? `at ${g.expires_at}` : 'never';
  const lines = [
    `signing ${decision === 'deny' ? 'a DENIAL' : 'an APPROVAL'} of ${g.id}:`,
    `  group:           ${show(g.group)}`,
    `  provider:        ${show(g.provider)}`,
    `  level:           L${g.level}`,
    `  allowed actions: ${showList(g.allowed_actions, `every ${g.provider} action up to L${g.level}`)}`,
    `  denied actions:  ${showList(g.denied_actions, 'none')}`,
    `  resources:       ${showList(g.resources, 'any')}`,
    `  expiry:          ${expiry}`,
    `  reason:          ${show(g.reason)}`,
  ];
  if (g.requested_by !== undefined) lines.push(`  requested by:    ${show(g.requested_by)}`);
  if (g.pending_expires_at != null) lines.push(`  approvals until: ${g.pending_expires_at}`);
  if (g.approvals !== undefined) {
    const counting = g.approvals.filter((a) => a.counts).map((a) => `${show(a.approver_id)} (${show(a.approver_group)}, ${a.decision})`);
    lines.push(`  decided so far:  ${counting.length > 0 ? counting.join(', ') : 'none'}`);
  }
  lines.push(`  digest:          ${g.digest}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Signs a decision on a grant's digest with {@link signApproval}: `iat` = `nowMs` in seconds,
 * `exp` = `iat + ttlS`.
 * @param privateJwk the approver's private Ed25519 JWK, `kid` = the approver id.
 * @returns the compact JWS.
 * @throws Error when the key has no `kid` or cannot sign EdDSA.
 */
export function signGrantDecision(privateJwk: JWK, grant: { id: string; digest: string }, decision: 'approve' | 'deny', nowMs: number, ttlS: number): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  return signApproval(privateJwk, { grant_id: grant.id, grant_digest: grant.digest, decision, iat, exp: iat + ttlS });
}
