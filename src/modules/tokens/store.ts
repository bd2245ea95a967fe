/**
 * The tokens' tables behind the store seam (see `platform/db/seam.ts`): `token_revocations`
 * (append-only) and `token_keys` (the registry of token-signing public keys). Both are read on
 * every bearer request, straight from the database (no cache), so a revocation or a rotation
 * written by any process (the CLI, another server) applies on the next request.
 */
import { and, asc, eq, gt, gte, inArray, isNull, or, sql } from 'drizzle-orm';
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { appendAlone, runPlan, settled, type Plan } from '../../platform/db/seam.js';
import { tokenKeys, tokenRevocations } from './schema.js';
import type { Role } from './types.js';

/** A `token_revocations` row. Times: `revokedAt` Unix ms, `issuedBefore` Unix s. */
export type RevocationRow = typeof tokenRevocations.$inferSelect;
/** A `token_keys` row. Times are Unix ms; `rotation` is the JSON of the rotation intent, if any. */
export type TokenKeyRow = typeof tokenKeys.$inferSelect;

/** The claims a revocation is checked against; `issuedAtS` is the token's `iat` (Unix s). */
export interface RevocationProbe {
  jti: string;
  subject: string;
  role: Role;
  issuedAtS: number;
}

/** What a revocation revokes: one token, or the tokens of a subject (of one role, when given). */
export type RevocationTarget = { jti: string } | { subject: string; role?: Role };

/**
 * What a revocation's plan sees: the revocation an earlier request with the same
 * Idempotency-Key made (null without a key, or when the key is new), and the revocations already
 * there for the same target (the jti's; or the subject's that cover every role, or this role),
 * oldest first.
 */
export interface RevocationState {
  prior: RevocationRow | null;
  existing: RevocationRow[];
}

/** Filters and page of {@link TokenStore.listRevocations}; `after` is the last id of the previous page. */
export interface RevocationFilter {
  jti?: string;
  subject?: string;
  limit: number;
  after?: string;
}

/** What a retirement writes: the kids to retire now, verifying until `verifyUntil` (Unix ms). */
export interface KeyRetirement {
  kids: readonly string[];
  verifyUntil: number;
}

/** Where revocations and token-signing keys are kept. */
export interface TokenStore {
  /** The revocation that refuses a token with these claims, or null (one indexed read). */
  findRevocation(probe: RevocationProbe): Promise<{ id: string; revokedAt: number } | null>;
  /**
   * Writes one revocation in one transaction: reads {@link RevocationState} for `actor`'s
   * `idempotencyKey` and `target`, lets `plan` decide, inserts the row it returns with its audit rows.
   */
  revoke<T>(actor: string, idempotencyKey: string | null, target: RevocationTarget, plan: Plan<RevocationState, RevocationRow, T>): Promise<T>;
  /** Revocations oldest first (by id), filtered, at most `limit`; `more` when others follow. */
  listRevocations(f: RevocationFilter): Promise<{ rows: RevocationRow[]; more: boolean }>;
  /** The key named `kid`, or null (one primary-key read). */
  key(kid: string): Promise<TokenKeyRow | null>;
  /** Every registered key, oldest first (`created_at`, then kid). */
  keys(): Promise<TokenKeyRow[]>;
  /**
   * Registers a key in one transaction: reads the row of `kid` (null when missing), lets `plan`
   * decide, inserts the row it returns (`createdAt` is the transaction's now) with its audit rows.
   */
  registerKey<T>(kid: string, plan: Plan<TokenKeyRow | null, Omit<TokenKeyRow, 'createdAt' | 'retiredAt' | 'verifyUntil'>, T>): Promise<T>;
  /**
   * Retires keys in one transaction: reads every key, lets `plan` decide, sets `retired_at` = now
   * and `verify_until` on the kids it names that are still current, with its audit rows.
   */
  retireKeys<T>(plan: Plan<TokenKeyRow[], KeyRetirement, T>): Promise<T>;
  /** Appends audit rows alone, in a transaction of their own (a token minted: nothing else is stored). */
  audit(rows: readonly ActivityInput[]): Promise<void>;
}

/** {@link TokenStore} over SQLite. */
export function sqliteTokenStore(db: Db, clock: Clock): TokenStore {
  const r = tokenRevocations;
  const k = tokenKeys;
  // Both reads run on every bearer request: prepared once (drizzle placeholders) and reused.
  let findStmt: ReturnType<typeof prepareFind> | undefined;
  let keyStmt: ReturnType<typeof prepareKey> | undefined;
  function prepareFind() {
    return db.orm
      .select({ id: r.id, revokedAt: r.revokedAt })
      .from(r)
      .where(
        or(
          eq(r.jti, sql.placeholder('jti')),
          and(eq(r.subject, sql.placeholder('subject')), gte(r.issuedBefore, sql.placeholder('iat')), or(isNull(r.role), eq(r.role, sql.placeholder('role')))),
        ),
      )
      .limit(1)
      .prepare();
  }
  function prepareKey() {
    return db.orm.select().from(k).where(eq(k.kid, sql.placeholder('kid'))).prepare();
  }
  const existingFor = (target: RevocationTarget): RevocationRow[] =>
    'jti' in target
      ? db.orm.select().from(r).where(eq(r.jti, target.jti)).all()
      : db.orm
          .select()
          .from(r)
          .where(and(eq(r.subject, target.subject), target.role === undefined ? isNull(r.role) : or(isNull(r.role), eq(r.role, target.role))))
          .orderBy(asc(r.id))
          .all();

  return {
    findRevocation: (p) =>
      settled(() => {
        findStmt ??= prepareFind();
        return findStmt.get({ jti: p.jti, subject: p.subject, iat: p.issuedAtS, role: p.role }) ?? null;
      }),
    revoke: (actor, idempotencyKey, target, plan) =>
      runPlan(
        db,
        clock,
        () => ({
          prior: idempotencyKey === null ? null : (db.orm.select().from(r).where(and(eq(r.revokedBy, actor), eq(r.idempotencyKey, idempotencyKey))).get() ?? null),
          existing: existingFor(target),
        }),
        plan,
        (row) => db.orm.insert(r).values(row).run(),
      ),
    listRevocations: (f) =>
      settled(() => {
        const rows = db.orm
          .select()
          .from(r)
          .where(and(f.jti === undefined ? undefined : eq(r.jti, f.jti), f.subject === undefined ? undefined : eq(r.subject, f.subject), f.after === undefined ? undefined : gt(r.id, f.after)))
          .orderBy(asc(r.id))
          .limit(f.limit + 1)
          .all();
        return { rows: rows.slice(0, f.limit), more: rows.length > f.limit };
      }),
    key: (kid) =>
      settled(() => {
        keyStmt ??= prepareKey();
        return keyStmt.get({ kid }) ?? null;
      }),
    keys: () => settled(() => db.orm.select().from(k).orderBy(asc(k.createdAt), asc(k.kid)).all()),
    registerKey: (kid, plan) =>
      runPlan(
        db,
        clock,
        () => db.orm.select().from(k).where(eq(k.kid, kid)).get() ?? null,
        plan,
        (row, _current, now) => db.orm.insert(k).values({ ...row, createdAt: now }).run(),
      ),
    retireKeys: (plan) =>
      runPlan(
        db,
        clock,
        () => db.orm.select().from(k).orderBy(asc(k.createdAt), asc(k.kid)).all(),
        plan,
        (write, _current, now) => {
          if (write.kids.length === 0) return;
          db.orm
            .update(k)
            .set({ retiredAt: now, verifyUntil: write.verifyUntil })
            .where(and(isNull(k.retiredAt), inArray(k.kid, [...write.kids])))
            .run();
        },
      ),
    audit: (rows) => appendAlone(db, clock, rows),
  };
}
