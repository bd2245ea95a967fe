/**
 * The registry of token-signing public keys (`token_keys`) and the planned rotation of the
 * broker's signing key with an overlap. {@link TokenKeys.lookup} is asked by `TokenService.verify`
 * on every bearer request, straight from the database, so a rotation made by any process (the
 * CLI) applies to a running server on its next request.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { and, asc, eq, isNull, lt, ne, sql, type SQL } from 'drizzle-orm';
import { appendActivity } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import { immediate, type Db } from '../../platform/db/open.js';
import { ApiError } from '../../platform/http/problem.js';
import { publicJwk, readSigningKey, type BrokerSigningKey } from '../../platform/signing-key.js';
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

/**
 * The rotation a key made by `broker token rotate-key` belongs to, stored with its row
 * (`token_keys.rotation`) before `token.key` is replaced: the key it replaces, the grace asked
 * (ms), the reason and who rotated (`operator:<name>`).
 */
export interface RotationIntent {
  old_kid: string;
  grace_ms: number;
  reason: string;
  actor: string;
}

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
   * Registers a key's public half (kid, public JWK, created_at = clock now, and the rotation it
   * belongs to, if any) unless its kid is already there: a SELECT, then, only when missing, the
   * `INSERT OR IGNORE` and its `token.key_registered` audit row (subject the kid; detail `{kid}`,
   * plus the {@link RotationIntent} fields for a rotation; actor `system` at start-up, else the
   * rotating operator) in one transaction. A read-only database whose key is known still starts.
   * Never stores the private part.
   * @returns `registered`, or what the existing row says (`current` / `retired`).
   * @throws the SQLite error, or ApiError 503 `audit_unavailable`, when the row is missing and
   *   cannot be written.
   */
  register(key: BrokerSigningKey, rotation?: RotationIntent): RegisterOutcome {
    const t = tokenKeys;
    const existing = this.db.orm.select({ retiredAt: t.retiredAt }).from(t).where(eq(t.kid, key.kid)).get();
    if (existing) return existing.retiredAt === null ? 'current' : 'retired';
    return immediate(this.db, () => {
      const now = this.clock.now();
      const row = { kid: key.kid, publicJwk: JSON.stringify(publicJwk(key)), createdAt: now, rotation: rotation ? JSON.stringify(rotation) : null };
      const inserted = this.db.orm.insert(t).values(row).onConflictDoNothing().returning({ kid: t.kid }).all();
      if (inserted.length === 0) return 'current'; // another process registered it in between
      const detail = { kid: key.kid, ...rotation };
      appendActivity(this.db, { actor: rotation?.actor ?? 'system', kind: 'token.key_registered', subject: key.kid, detail }, now);
      return 'registered';
    });
  }

  /**
   * Start-up with `key` already registered and current: finishes a rotation that stopped between
   * replacing `token.key` and retiring the old key (`TokenService.rotateSigningKey` steps 2–3).
   * Every other current key registered before `key` is retired as the rotation asked:
   * `verify_until` = `key`'s `created_at` + its intent's `grace_ms` (the default grace
   * `defaultGraceMs` when the row has no intent), but not before now; each is audited as
   * `token.key_rotated` (actor `system`, detail with `rotated_by` and a reason saying so), in one
   * transaction. Keys registered after `key` belong to a rotation still in progress and are left.
   * @returns the retirement written, or null when there was nothing to finish.
   * @throws ApiError 503 `audit_unavailable`, or the SQLite error; start-up stops.
   */
  finishInterruptedRotation(key: BrokerSigningKey, defaultGraceMs: number): Retirement | null {
    const t = tokenKeys;
    const read = () => this.db.orm.select({ createdAt: t.createdAt, rotation: t.rotation }).from(t).where(eq(t.kid, key.kid)).get();
    const olderCurrent = (createdAt: number) => and(isNull(t.retiredAt), ne(t.kid, key.kid), lt(t.createdAt, createdAt));
    // Read first, so the usual start (nothing to finish) writes nothing and a read-only database starts.
    const seen = read();
    if (!seen || !this.db.orm.select({ kid: t.kid }).from(t).where(olderCurrent(seen.createdAt)).get()) return null;
    return immediate(this.db, () => {
      const mine = read();
      if (!mine) return null;
      const intent = mine.rotation === null ? null : (JSON.parse(mine.rotation) as RotationIntent);
      const now = this.clock.now();
      const verifyUntil = Math.max(now, mine.createdAt + (intent?.grace_ms ?? defaultGraceMs));
      const retired = this.retireCurrent(olderCurrent(mine.createdAt), now, verifyUntil);
      if (retired.length === 0) return null;
      const reason = `${intent?.reason ?? 'token.key holds a newer key'} (finished at start-up: the rotation stopped before it retired the old key)`;
      for (const oldKid of retired) {
        const detail = { old_kid: oldKid, new_kid: key.kid, verify_until: new Date(verifyUntil).toISOString(), reason, rotated_by: intent?.actor ?? null };
        appendActivity(this.db, { actor: 'system', kind: 'token.key_rotated', subject: key.kid, detail }, now);
      }
      return { retired, verifyUntil };
    });
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
   * `graceMs`) and audits `token.key_rotated` for each (actor, subject = `keep.kid`, detail
   * `{old_kid, new_kid, verify_until, reason}`), in one `BEGIN IMMEDIATE` transaction; none when a
   * start-up already finished this rotation ({@link TokenKeys.finishInterruptedRotation}). Inside
   * it the key file is read again: when it no longer holds `keep` (another rotation renamed its
   * key in meanwhile), nothing is written.
   * @param graceMs ms the retired keys still verify; 0 stops them at once.
   * @throws Error when `keep.path` no longer holds `keep`; ApiError 503 `audit_unavailable`.
   */
  retireAllBut(keep: BrokerSigningKey, graceMs: number, reason: string, actor: string): Retirement {
    return immediate(this.db, () => {
      const onDisk = readSigningKey(keep.path).kid;
      if (onDisk !== keep.kid) throw new Error(`${keep.path} now holds key ${onDisk}, not ${keep.kid}: another rotation ran at the same time; see \`broker token keys\``);
      const now = this.clock.now();
      const verifyUntil = now + graceMs;
      const retired = this.retireCurrent(ne(tokenKeys.kid, keep.kid), now, verifyUntil);
      for (const oldKid of retired) {
        const detail = { old_kid: oldKid, new_kid: keep.kid, verify_until: new Date(verifyUntil).toISOString(), reason };
        appendActivity(this.db, { actor, kind: 'token.key_rotated', subject: keep.kid, detail }, now);
      }
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
      const retired = this.retireCurrent(ne(tokenKeys.kid, key.kid), now, now);
      const reason = 'token.key was replaced outside `broker token rotate-key`; the keys before it stop verifying at once';
      for (const oldKid of retired) {
        appendActivity(this.db, { actor: 'system', kind: 'token.key_rotated', subject: key.kid, detail: { old_kid: oldKid, new_kid: key.kid, verify_until: new Date(now).toISOString(), reason } }, now);
      }
      return retired;
    });
  }

  /**
   * Retires every current key matching `which`: `retired_at` = `now`, `verify_until` (both Unix
   * ms). Runs in the caller's transaction. @returns the retired kids.
   */
  private retireCurrent(which: SQL | undefined, now: number, verifyUntil: number): string[] {
    const t = tokenKeys;
    return this.db.orm
      .update(t)
      .set({ retiredAt: now, verifyUntil })
      .where(and(isNull(t.retiredAt), which))
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
