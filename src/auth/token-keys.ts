/**
 * The registry of token-signing public keys (`token_keys`) and the planned rotation of the
 * broker's signing key with an overlap. {@link TokenKeys.lookup} is asked by `TokenService.verify`
 * on every bearer request, straight from the database, so a rotation made by any process (the
 * CLI) applies to a running server on its next request.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { and, asc, eq, isNull, ne, sql } from 'drizzle-orm';
import { appendActivity } from '../audit/trail.js';
import type { Clock } from '../clock.js';
import { immediate, type Db } from '../db/open.js';
import { ApiError } from '../http/problem.js';
import { publicJwk, readSigningKey, type BrokerSigningKey } from './keys.js';
import { tokenKeys } from './schema.js';

/** A registered key as the verifier needs it; `verifyUntil` is Unix ms, null while current. */
export interface KnownTokenKey {
  kid: string;
  publicKey: KeyObject;
  verifyUntil: number | null;
}

/**
 * One row of `broker token keys`. Times are RFC 3339 UTC; `current` is true for the key in
 * `token.key` (the one new tokens are signed with).
 */
export interface TokenKeyView {
  kid: string;
  created_at: string;
  retired_at: string | null;
  verify_until: string | null;
  current: boolean;
}

/** What {@link TokenKeys.register} found: a new row, the key already current, or already retired. */
export type RegisterOutcome = 'registered' | 'current' | 'retired';

/** The retirement {@link TokenKeys.retireAllBut} wrote: the retired kids and their `verify_until` (Unix ms). */
export interface Retirement {
  retired: string[];
  verifyUntil: number;
}

/** Reads and writes `token_keys` over one database connection, with the injected clock. */
export class TokenKeys {
  private lookupStmt: ReturnType<typeof this.prepareLookup> | undefined;
  /** Public KeyObjects by kid (a kid names one public key for good; validity is re-read each time). */
  private readonly publicKeys = new Map<string, KeyObject>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  private prepareLookup() {
    const t = tokenKeys;
    return this.db.orm
      .select({ publicJwk: t.publicJwk, verifyUntil: t.verifyUntil })
      .from(t)
      .where(eq(t.kid, sql.placeholder('kid')))
      .prepare();
  }

  /**
   * Registers a key's public half (kid, public JWK, created_at = clock now) unless its kid is
   * already there: a SELECT, then `INSERT OR IGNORE` only when missing (so a read-only database
   * whose key is known still starts). Never stores the private part.
   * @returns `registered`, or what the existing row says (`current` / `retired`).
   * @throws the SQLite error when the row is missing and cannot be written.
   */
  register(key: BrokerSigningKey): RegisterOutcome {
    const t = tokenKeys;
    const existing = this.db.orm.select({ retiredAt: t.retiredAt }).from(t).where(eq(t.kid, key.kid)).get();
    if (existing) return existing.retiredAt === null ? 'current' : 'retired';
    const row = { kid: key.kid, publicJwk: JSON.stringify(publicJwk(key)), createdAt: this.clock.now() };
    this.db.orm.insert(t).values(row).onConflictDoNothing().run();
    return 'registered';
  }

  /**
   * The registered key named `kid`, or null when unknown: one primary-key SELECT on every call
   * (no cache of validity; the public KeyObject is cached by kid).
   * @throws ApiError 503 `service_unavailable` when the database cannot be read (fail closed).
   */
  lookup(kid: string): KnownTokenKey | null {
    let row: { publicJwk: string; verifyUntil: number | null } | undefined;
    try {
      this.lookupStmt ??= this.prepareLookup();
      row = this.lookupStmt.get({ kid });
    } catch (err) {
      throw new ApiError('service_unavailable', 'The broker could not check token signing keys; try again.', { cause: err instanceof Error ? err.message : String(err) });
    }
    if (!row) return null;
    let publicKey = this.publicKeys.get(kid);
    if (!publicKey) {
      publicKey = createPublicKey({ key: JSON.parse(row.publicJwk) as JsonWebKey, format: 'jwk' });
      this.publicKeys.set(kid, publicKey);
    }
    return { kid, publicKey, verifyUntil: row.verifyUntil };
  }

  /**
   * Retires every current key except `keep` (`retired_at` = now, `verify_until` = now +
   * `graceMs`) and audits `token.key_rotated` (actor, subject = `keep.kid`, detail `{old_kid,
   * new_kid, verify_until, reason}`), in one `BEGIN IMMEDIATE` transaction. Inside it the key file
   * is read again: when it no longer holds `keep` (another rotation renamed its key in
   * meanwhile), nothing is written.
   * @param oldKid the key `keep` replaces (the audit's `old_kid`).
   * @param graceMs ms the retired keys still verify; 0 stops them at once.
   * @throws Error when `keep.path` no longer holds `keep`; ApiError 503 `audit_unavailable`.
   */
  retireAllBut(keep: BrokerSigningKey, oldKid: string, graceMs: number, reason: string, actor: string): Retirement {
    return immediate(this.db, () => {
      const onDisk = readSigningKey(keep.path).kid;
      if (onDisk !== keep.kid) throw new Error(`${keep.path} now holds key ${onDisk}, not ${keep.kid}: another rotation ran at the same time; see \`broker token keys\``);
      const now = this.clock.now();
      const verifyUntil = now + graceMs;
      const retired = this.retireCurrentExcept(keep.kid, now, verifyUntil);
      const detail = { old_kid: oldKid, new_kid: keep.kid, verify_until: new Date(verifyUntil).toISOString(), reason };
      appendActivity(this.db, { actor, kind: 'token.key_rotated', subject: keep.kid, detail }, now);
      return { retired, verifyUntil };
    });
  }

  /**
   * Start-up after `token.key` was replaced by hand (its key was just registered, see
   * {@link TokenKeys.register}): retires at once every other current key, each audited as
   * `token.key_rotated` (actor `system`, `verify_until` = now, a reason saying so), in one
   * transaction, so replacing the file stays the break-glass it was: the old key's tokens stop at
   * the next start of any broker process. A rotation in progress is untouched, since its new key
   * is registered before its file is renamed and so is never "just registered" by another process.
   * @returns the kids retired (none on a first start or an upgrade).
   * @throws ApiError 503 `audit_unavailable`, or the SQLite error; start-up stops.
   */
  retireReplaced(key: BrokerSigningKey): string[] {
    return immediate(this.db, () => {
      const now = this.clock.now();
      const retired = this.retireCurrentExcept(key.kid, now, now);
      const reason = 'token.key was replaced outside `broker token rotate-key`; the keys before it stop verifying at once';
      for (const oldKid of retired) {
        appendActivity(this.db, { actor: 'system', kind: 'token.key_rotated', subject: key.kid, detail: { old_kid: oldKid, new_kid: key.kid, verify_until: new Date(now).toISOString(), reason } }, now);
      }
      return retired;
    });
  }

  /**
   * Retires every current key but `kid`: `retired_at` = `now`, `verify_until` (both Unix ms).
   * Runs in the caller's transaction. @returns the retired kids.
   */
  private retireCurrentExcept(kid: string, now: number, verifyUntil: number): string[] {
    const t = tokenKeys;
    return this.db.orm
      .update(t)
      .set({ retiredAt: now, verifyUntil })
      .where(and(isNull(t.retiredAt), ne(t.kid, kid)))
      .returning({ kid: t.kid })
      .all()
      .map((r) => r.kid);
  }

  /** Every registered key, oldest first; `current` marks `currentKid` (the key in `token.key`). */
  list(currentKid: string): TokenKeyView[] {
    const t = tokenKeys;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return this.db.orm
      .select()
      .from(t)
      .orderBy(asc(t.createdAt), asc(t.kid))
      .all()
      .map((r) => ({ kid: r.kid, created_at: new Date(r.createdAt).toISOString(), retired_at: iso(r.retiredAt), verify_until: iso(r.verifyUntil), current: r.kid === currentKid }));
  }
}
