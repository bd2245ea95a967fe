/**
 * Revoking operator and auditor bearer tokens one at a time (by `jti`), or every token of a
 * subject issued up to now (by `sub`, optionally one role), before their `exp`. Revocations live in
 * `token_revocations` (append-only, see `store.ts`); {@link TokenRevocations.find} is asked by
 * `TokenService.verify` on every bearer request, straight from the database, so a revocation
 * written by any process (the CLI, another server) refuses the token on its next request.
 */
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError } from '../../platform/http/problem.js';
import { idempotent, type IdempotencyRef } from '../../platform/idempotency.js';
import type { RevocationFilter, RevocationProbe, RevocationRow, RevocationTarget, TokenStore } from './store.js';
import { ROLES, Subject, type Role } from './types.js';

/** A token id as minted (`randomUUID`), or any `jti` up to 128 printable ASCII characters. */
export const Jti = z.string().regex(/^[\x21-\x7e]{1,128}$/, 'a jti is 1–128 printable ASCII characters');

/**
 * What to revoke, as the HTTP body and the CLI options say it: exactly one of `jti` (one token)
 * or `subject` (every token of that subject issued up to now, of `role` only when given), and a
 * `reason` (1–1000 characters, trimmed). Unknown members are refused.
 */
export const RevokeTokensInput = z
  .strictObject({
    jti: Jti.optional(),
    subject: Subject.optional(),
    role: z.enum(ROLES).optional(),
    reason: z.string({ error: 'a reason is required' }).trim().min(1, 'a reason is required').max(1000),
  })
  .refine((b) => (b.jti === undefined) !== (b.subject === undefined), 'give exactly one of jti or subject')
  .refine((b) => b.jti === undefined || b.role === undefined, { message: 'role goes with subject, not with jti', path: ['role'] });

/** A parsed {@link RevokeTokensInput}. */
export type RevokeTokensInput = z.infer<typeof RevokeTokensInput>;

/**
 * One revocation as the API and the CLI show it. Times are RFC 3339 UTC; `issued_before` is set
 * for subject revocations only (tokens with `iat` at or before it are refused, to the second).
 */
export interface TokenRevocation {
  id: string;
  jti: string | null;
  subject: string | null;
  role: Role | null;
  issued_before: string | null;
  revoked_at: string;
  revoked_by: string;
  reason: string;
}

/**
 * What {@link TokenRevocations.revoke} did: wrote a new revocation (`revoked`), answered the one an
 * earlier request with the same Idempotency-Key wrote (`replayed`), or found the tokens already
 * revoked and wrote nothing (`already_revoked`: the same jti, or a subject revocation of this
 * second that covers the same tokens).
 */
export type RevokeOutcome = 'revoked' | 'replayed' | 'already_revoked';

type Row = RevocationRow;

const nextUlid = monotonicFactory();

/** Revoking tokens and checking revocations, over the {@link TokenStore}. */
export class TokenRevocations {
  constructor(private readonly store: TokenStore) {}

  /**
   * The revocation that refuses a token with these claims, or null: one indexed read of the
   * database on every call (no cache: every call sees every committed revocation).
   * @returns `{id, revokedAt}` (Unix ms) of a matching revocation.
   * @throws ApiError 503 `service_unavailable` when the database cannot be read (fail closed).
   */
  async find(probe: RevocationProbe): Promise<{ id: string; revokedAt: number } | null> {
    try {
      return await this.store.findRevocation(probe);
    } catch (err) {
      throw new ApiError('service_unavailable', 'The broker could not check token revocations; try again.', { cause: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Revokes one token (`jti`) or every token of `subject` (of `role` when given) with `iat` at or
   * before the clock's current second. Writes the row and the audit row `token.revoked` (detail:
   * `id`, `jti` or `subject`/`role`/`issued_before`, `reason`) in one transaction. With `idem`, a
   * repeat of the same key by the same actor answers the first revocation (`replayed`) when the
   * body hash is the same (`idempotent()`). Revoking what is already revoked writes nothing
   * (`already_revoked`, with the existing revocation).
   * @param actor who revokes, `operator:<subject>`.
   * @throws ApiError 422 `idempotency_key_reused` (same key, other body), 503 `audit_unavailable`.
   */
  revoke(input: RevokeTokensInput, actor: string, idem?: IdempotencyRef): Promise<{ revocation: TokenRevocation; outcome: RevokeOutcome }> {
    const target: RevocationTarget = input.jti !== undefined ? { jti: input.jti } : { subject: input.subject!, ...(input.role ? { role: input.role } : {}) };
    return this.store.revoke(actor, idem?.key ?? null, target, ({ prior, existing }, now) => {
      const { value, replayed } = idempotent(
        idem,
        () => (prior ? { value: { result: { revocation: toView(prior), outcome: 'replayed' as RevokeOutcome } }, requestHash: prior.requestHash, id: prior.id } : undefined),
        () => revocationPlan(input, actor, idem, existing, now),
        (p) => `revocation ${p.id}`,
      );
      return replayed ? { result: value.result } : value;
    });
  }

  /**
   * Revocations oldest first (by id), filtered by `jti` or `subject`, at most `limit`.
   * @returns the page and `nextCursor` (its last id when more follow, else null).
   */
  async list(f: RevocationFilter): Promise<{ items: TokenRevocation[]; nextCursor: string | null }> {
    const { rows, more } = await this.store.listRevocations(f);
    const items = rows.map(toView);
    return { items, nextCursor: more ? items[items.length - 1]!.id : null };
  }
}

/** A new revocation of `input` at `now`, or the one already there that covers the same tokens. */
function revocationPlan(input: RevokeTokensInput, actor: string, idem: IdempotencyRef | undefined, existing: readonly Row[], now: number): Planned<Row, { revocation: TokenRevocation; outcome: RevokeOutcome }> {
  const issuedBefore = input.subject === undefined ? null : Math.floor(now / 1000);
  const covering = issuedBefore === null ? existing[0] : existing.find((r) => r.issuedBefore !== null && r.issuedBefore >= issuedBefore);
  if (covering) return { result: { revocation: toView(covering), outcome: 'already_revoked' } };
  const row: Row = {
    id: `rvk_${nextUlid(now)}`,
    jti: input.jti ?? null,
    subject: input.subject ?? null,
    role: input.role ?? null,
    issuedBefore,
    revokedAt: now,
    revokedBy: actor,
    reason: input.reason,
    idempotencyKey: idem?.key ?? null,
    requestHash: idem?.requestHash ?? null,
  };
  const revocation = toView(row);
  const detail =
    row.jti !== null
      ? { id: row.id, jti: row.jti, reason: row.reason }
      : { id: row.id, subject: row.subject, role: row.role, issued_before: revocation.issued_before, reason: row.reason };
  return { write: row, audit: [{ actor, kind: 'token.revoked', subject: row.id, detail }], result: { revocation, outcome: 'revoked' } };
}

function toView(row: Row): TokenRevocation {
  return {
    id: row.id,
    jti: row.jti,
    subject: row.subject,
    role: row.role as Role | null,
    issued_before: row.issuedBefore === null ? null : new Date(row.issuedBefore * 1000).toISOString(),
    revoked_at: new Date(row.revokedAt).toISOString(),
    revoked_by: row.revokedBy,
    reason: row.reason,
  };
}
