/**
 * The registry of token-signing public keys (`token_keys`, see `store.ts`) and the planned rotation of the
 * broker's signing key with an overlap. {@link TokenKeys.lookup} is asked by `TokenService.verify`
 * on every bearer request, straight from the database, so a rotation made by any process (the
 * CLI) applies to a running server on its next request.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Planned } from '../../platform/db/seam.js';
import { ApiError } from '../../platform/http/problem.js';
import { publicJwk, readSigningKey, type BrokerSigningKey } from '../../platform/signing-key.js';
import type { KeyRetirement, TokenKeyRow, TokenStore } from './store.js';

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

/** The token-signing key registry, over the {@link TokenStore}. */
export class TokenKeys {
  /** Public KeyObjects by kid (a kid names one public key for good; validity is re-read each time). */
  private readonly publicKeys = new Map<string, KeyObject>();

  constructor(private readonly store: TokenStore) {}

  /**
   * Registers a key's public half (kid, public JWK, created_at = clock now, and the rotation it
   * belongs to, if any) unless its kid is already there: a read, then, only when missing, one
   * transaction that inserts the row and its `token.key_registered` audit row (subject the kid;
   * detail `{kid}`, plus the {@link RotationIntent} fields for a rotation; actor `system` at
   * start-up, else the rotating operator). A read-only database whose key is known still starts.
   * Never stores the private part.
   * @returns `registered`, or what the existing row says (`current` / `retired`).
   * @throws the SQLite error, or ApiError 503 `audit_unavailable`, when the row is missing and
   *   cannot be written.
   */
  async register(key: BrokerSigningKey, rotation?: RotationIntent): Promise<RegisterOutcome> {
    const existing = await this.store.key(key.kid);
    if (existing) return existing.retiredAt === null ? 'current' : 'retired';
    return this.store.registerKey(key.kid, (row): Planned<Omit<TokenKeyRow, 'createdAt' | 'retiredAt' | 'verifyUntil'>, RegisterOutcome> => {
      if (row) return { result: 'current' }; // another process registered it in between
      return {
        write: { kid: key.kid, publicJwk: JSON.stringify(publicJwk(key)), rotation: rotation ? JSON.stringify(rotation) : null },
        audit: [{ actor: rotation?.actor ?? 'system', kind: 'token.key_registered', subject: key.kid, detail: { kid: key.kid, ...rotation } }],
        result: 'registered',
      };
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
  async finishInterruptedRotation(key: BrokerSigningKey, defaultGraceMs: number): Promise<Retirement | null> {
    // Read first, so the usual start (nothing to finish) writes nothing and a read-only database starts.
    if (olderCurrent(await this.store.keys(), key.kid).length === 0) return null;
    return this.store.retireKeys((rows, now): Planned<KeyRetirement, Retirement | null> => {
      const mine = rows.find((r) => r.kid === key.kid);
      const retired = olderCurrent(rows, key.kid);
      if (!mine || retired.length === 0) return { result: null };
      const intent = mine.rotation === null ? null : (JSON.parse(mine.rotation) as RotationIntent);
      const verifyUntil = Math.max(now, mine.createdAt + (intent?.grace_ms ?? defaultGraceMs));
      const reason = `${intent?.reason ?? 'token.key holds a newer key'} (finished at start-up: the rotation stopped before it retired the old key)`;
      const audit = retired.map((oldKid): ActivityInput => ({
        actor: 'system',
        kind: 'token.key_rotated',
        subject: key.kid,
        detail: { old_kid: oldKid, new_kid: key.kid, verify_until: new Date(verifyUntil).toISOString(), reason, rotated_by: intent?.actor ?? null },
      }));
      return { write: { kids: retired, verifyUntil }, audit, result: { retired, verifyUntil } };
    });
  }

  /**
   * The registered key named `kid`, or null when unknown: one primary-key read on every call
   * (no cache of validity; the public KeyObject is cached by kid).
   * @throws ApiError 503 `service_unavailable` when the database cannot be read (fail closed).
   */
  async lookup(kid: string): Promise<KnownTokenKey | null> {
    let row: TokenKeyRow | null;
    try {
      row = await this.store.key(kid);
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
   * `{old_kid, new_kid, verify_until, reason}`), in one transaction; none when a start-up already
   * finished this rotation ({@link TokenKeys.finishInterruptedRotation}). Inside it the key file is
   * read again: when it no longer holds `keep` (another rotation renamed its key in meanwhile),
   * nothing is written.
   * @param graceMs ms the retired keys still verify; 0 stops them at once.
   * @throws Error when `keep.path` no longer holds `keep`; ApiError 503 `audit_unavailable`.
   */
  retireAllBut(keep: BrokerSigningKey, graceMs: number, reason: string, actor: string): Promise<Retirement> {
    return this.store.retireKeys((rows, now): Planned<KeyRetirement, Retirement> => {
      // Read inside the transaction, which serialises it with any other rotation's.
      const onDisk = readSigningKey(keep.path).kid;
      if (onDisk !== keep.kid) throw new Error(`${keep.path} now holds key ${onDisk}, not ${keep.kid}: another rotation ran at the same time; see \`broker token keys\``);
      const verifyUntil = now + graceMs;
      const retired = currentBut(rows, keep.kid);
      const audit = retired.map((oldKid): ActivityInput => ({
        actor,
        kind: 'token.key_rotated',
        subject: keep.kid,
        detail: { old_kid: oldKid, new_kid: keep.kid, verify_until: new Date(verifyUntil).toISOString(), reason },
      }));
      return { write: { kids: retired, verifyUntil }, audit, result: { retired, verifyUntil } };
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
  retireReplaced(key: BrokerSigningKey): Promise<string[]> {
    return this.store.retireKeys((rows, now): Planned<KeyRetirement, string[]> => {
      const retired = currentBut(rows, key.kid);
      const reason = 'token.key was replaced outside `broker token rotate-key`; the keys before it stop verifying at once';
      const audit = retired.map((oldKid): ActivityInput => ({
        actor: 'system',
        kind: 'token.key_rotated',
        subject: key.kid,
        detail: { old_kid: oldKid, new_kid: key.kid, verify_until: new Date(now).toISOString(), reason },
      }));
      return { write: { kids: retired, verifyUntil: now }, audit, result: retired };
    });
  }

  /** Every registered key, oldest first; `current` marks `currentKid` (the key in `token.key`). */
  async list(currentKid: string): Promise<TokenKeyView[]> {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return (await this.store.keys()).map((r) => ({
      kid: r.kid,
      created_at: new Date(r.createdAt).toISOString(),
      retired_at: iso(r.retiredAt),
      verify_until: iso(r.verifyUntil),
      current: r.kid === currentKid,
    }));
  }
}

/** The kids of the current keys other than `kid`, oldest first. */
function currentBut(rows: readonly TokenKeyRow[], kid: string): string[] {
  return rows.filter((r) => r.retiredAt === null && r.kid !== kid).map((r) => r.kid);
}

/** The kids of the current keys registered before `kid` (none when `kid` is not registered). */
function olderCurrent(rows: readonly TokenKeyRow[], kid: string): string[] {
  const mine = rows.find((r) => r.kid === kid);
  if (!mine) return [];
  return rows.filter((r) => r.retiredAt === null && r.kid !== kid && r.createdAt < mine.createdAt).map((r) => r.kid);
}
