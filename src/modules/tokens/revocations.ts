/**
 * Revoking operator and auditor bearer tokens one at a time (by `jti`), or every token of a
 * subject issued up to now (by `sub`, optionally one role), before their `exp`. Revocations live in
 * `token_revocations` (append-only); {@link TokenRevocations.find} is asked by
 * `TokenService.verify` on every bearer request, straight from the database, so a revocation
 * written by any process (the CLI, another server) refuses the token on its next request.
 */
import { and, asc, eq, gt, gte, isNull, or, sql } from 'drizzle-orm';
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import { appendActivity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import type { IdempotencyRef } from '../../platform/idempotency.js';
import { tokenRevocations } from './schema.js';
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

/** The claims a revocation is checked against; `issuedAtS` is the token's `iat` (Unix s). */
export interface RevocationProbe {
  jti: string;
  subject: string;
  role: Role;
  issuedAtS: number;
}

/** Filters and page of {@link TokenRevocations.list}; `after` is the previous page's `nextCursor`. */
export interface RevocationFilter {
  jti?: string;
  subject?: string;
  limit: number;
  after?: string;
}

type Row = typeof tokenRevocations.$inferSelect;

const nextUlid = monotonicFactory();

/** Reads and writes `token_revocations` over one database connection, with the injected clock. */
export class TokenRevocations {
  private findStmt: ReturnType<typeof this.prepareFind> | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  private prepareFind() {
    const t = tokenRevocations;
    return this.db.orm
      .select({ id: t.id, revokedAt: t.revokedAt })
      .from(t)
      .where(
        or(
          eq(t.jti, sql.placeholder('jti')),
          and(
            eq(t.subject, sql.placeholder('subject')),
            gte(t.issuedBefore, sql.placeholder('iat')),
            or(isNull(t.role), eq(t.role, sql.placeholder('role'))),
          ),
        ),
      )
      .limit(1)
      .prepare();
  }

  /**
   * The revocation that refuses a token with these claims, or null: one indexed SELECT, prepared
   * on first use and reused (no cache: every call sees every committed revocation).
   * @returns `{id, revokedAt}` (Unix ms) of a matching revocation.
   * @throws ApiError 503 `service_unavailable` when the database cannot be read (fail closed).
   */
  find(probe: RevocationProbe): { id: string; revokedAt: number } | null {
    try {
      this.findStmt ??= this.prepareFind();
      return this.findStmt.get({ jti: probe.jti, subject: probe.subject, iat: probe.issuedAtS, role: probe.role }) ?? null;
    } catch (err) {
      throw new ApiError('service_unavailable', 'The broker could not check token revocations; try again.', { cause: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Revokes one token (`jti`) or every token of `subject` (of `role` when given) with `iat` at or
   * before the clock's current second. Writes the row and the audit row `token.revoked` (detail:
   * `id`, `jti` or `subject`/`role`/`issued_before`, `reason`) in one `BEGIN IMMEDIATE`
   * transaction. With `idem`, a repeat of the same key by the same actor answers the first
   * revocation (`replayed`) when the body hash is the same. Revoking what is already revoked writes
   * nothing (`already_revoked`, with the existing revocation).
   * @param actor who revokes, `operator:<subject>`.
   * @throws ApiError 422 `idempotency_key_reused` (same key, other body), 503 `audit_unavailable`.
   */
  revoke(input: RevokeTokensInput, actor: string, idem?: IdempotencyRef): { revocation: TokenRevocation; outcome: RevokeOutcome } {
    const t = tokenRevocations;
    return immediate(this.db, () => {
      const now = this.clock.now();
      if (idem) {
        const prior = this.db.orm.select().from(t).where(and(eq(t.revokedBy, actor), eq(t.idempotencyKey, idem.key))).get();
        if (prior) {
          if (prior.requestHash !== idem.requestHash) {
            throw new ApiError('idempotency_key_reused', `The Idempotency-Key "${idem.key}" already made revocation ${prior.id} with a different body; use a new key.`);
          }
          return { revocation: toView(prior), outcome: 'replayed' };
        }
      }
      const issuedBefore = input.subject === undefined ? null : Math.floor(now / 1000);
      const existing =
        input.jti !== undefined
          ? this.db.orm.select().from(t).where(eq(t.jti, input.jti)).get()
          : this.db.orm
              .select()
              .from(t)
              .where(and(eq(t.subject, input.subject!), gte(t.issuedBefore, issuedBefore!), input.role === undefined ? isNull(t.role) : or(isNull(t.role), eq(t.role, input.role))))
              .orderBy(asc(t.id))
              .get();
      if (existing) return { revocation: toView(existing), outcome: 'already_revoked' };
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
      this.db.orm.insert(t).values(row).run();
      const revocation = toView(row);
      const detail =
        row.jti !== null
          ? { id: row.id, jti: row.jti, reason: row.reason }
          : { id: row.id, subject: row.subject, role: row.role, issued_before: revocation.issued_before, reason: row.reason };
      appendActivity(this.db, { actor, kind: 'token.revoked', subject: row.id, detail }, now);
      return { revocation, outcome: 'revoked' };
    });
  }

  /**
   * Revocations oldest first (by id), filtered by `jti` or `subject`, at most `limit`.
   * @returns the page and `nextCursor` (its last id when more follow, else null).
   */
  list(f: RevocationFilter): { items: TokenRevocation[]; nextCursor: string | null } {
    const t = tokenRevocations;
    const rows = this.db.orm
      .select()
      .from(t)
      .where(
        and(
          f.jti === undefined ? undefined : eq(t.jti, f.jti),
          f.subject === undefined ? undefined : eq(t.subject, f.subject),
          f.after === undefined ? undefined : gt(t.id, f.after),
        ),
      )
      .orderBy(asc(t.id))
      .limit(f.limit + 1)
      .all();
    const items = rows.slice(0, f.limit).map(toView);
    return { items, nextCursor: rows.length > f.limit ? items[items.length - 1]!.id : null };
  }
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
