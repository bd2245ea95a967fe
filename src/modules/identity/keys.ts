import { hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { registerSecret, registerSecretBytes } from '../../platform/audit/redact.js';
import type { Db } from '../../platform/db/open.js';
import type { Planned } from '../../platform/db/seam.js';
import { sqliteChangeSequence, type ChangeSequence } from '../../platform/db/change-sequence.js';
import type { Clock } from '../../platform/clock.js';
import { sqliteGroupKeyStore, type GroupKeyChange, type GroupKeyRow, type GroupKeyStore } from './store.js';
import { KEYID_RE } from '../../protocol/profile.js';

/** Master key length, in bytes. */
const MASTER_KEY_BYTES = 32;
/** Derived group secret length, in bytes (HMAC-SHA256 key). */
export const GROUP_SECRET_BYTES = 32;

/**
 * Reads the master key from `<dataDir>/master.key` (base64 text), creating it with 32 random
 * bytes and mode 0600 when missing. The key is registered for redaction: the file's text, and the
 * bytes as base64url, base64 and hex.
 * @returns the raw key and whether it was created now.
 * @throws Error when the file exists but does not hold 32 base64 bytes.
 */
export function loadOrCreateMasterKey(dataDir: string): { key: Buffer; path: string; created: boolean } {
  const file = path.join(dataDir, 'master.key');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let created = false;
  try {
    fs.writeFileSync(file, `${randomBytes(MASTER_KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = fs.readFileSync(file, 'utf8').trim();
  const key = Buffer.from(text, 'base64');
  if (key.length !== MASTER_KEY_BYTES) throw new Error(`${file}: expected ${MASTER_KEY_BYTES} base64-encoded bytes`);
  registerSecret(text);
  registerSecretBytes(key);
  return { key, path: file, created };
}

/**
 * Derives a group's HMAC secret: HKDF-SHA256 (RFC 5869) over the master key with salt
 * `nanoclaw-broker/group-hmac` and info `<group>:v<version>`, 32 bytes. Registered for redaction
 * as base64url (its `.ipc_secret` form), base64 and hex.
 */
export function deriveGroupSecret(masterKey: Buffer, group: string, version: number): Buffer {
  const secret = Buffer.from(hkdfSync('sha256', masterKey, 'nanoclaw-broker/group-hmac', `${group}:v${version}`, GROUP_SECRET_BYTES));
  registerSecretBytes(secret);
  return secret;
}

/**
 * How many versions past a group's newest one {@link KeyStore} derives (and so registers for
 * redaction) ahead of time, so a rotation made by another process (`broker secrets rotate`) is
 * redacted here before this process reloads `group_keys`.
 */
export const LOOKAHEAD_VERSIONS = 2;

/** A verified key: the group and version named by a `keyid` of the form `<group>:<version>`. */
export interface GroupKey {
  group: string;
  version: number;
  keyid: string;
  secret: Buffer;
}

/**
 * Where a {@link KeyStore} reads `group_keys` on an engine without synchronous reads
 * (PostgreSQL): every row, read when the keys' change sequence moved ({@link KeyStore.applyHead}).
 */
export interface AsyncKeyRows {
  /** Every `group_keys` row: group, version and retirement instant (Unix ms, null while current). */
  all(): Promise<Pick<KeyRow, 'group' | 'version' | 'retiresAt'>[]>;
}

interface KeyRow {
  group: string;
  version: number;
  createdAt: number;
  retiresAt: number | null;
}


/** A cached key version: its retirement instant (Unix ms, null while current) and, once looked up, its key. */
interface CachedKey {
  group: string;
  version: number;
  retiresAt: number | null;
  key: GroupKey | null;
}

/**
 * Group key versions. The database holds which versions exist and when they retire; secrets are
 * derived and cached in memory.
 *
 * Every secret this store can be asked for is registered for redaction (and so refused in request
 * input) from start-up, before any request: {@link ensureGroups} and every reload of the table
 * derive each group's live versions (the current one and those rotated out but still in their
 * grace) and the next {@link LOOKAHEAD_VERSIONS} versions.
 *
 * {@link lookup} (step 1 of every signed request) answers from memory: every `group_keys` row is
 * kept with its `retires_at`, which is compared with the clock on each lookup, so a retired
 * version stops verifying at its exact instant. Each lookup first reads the keys' change sequence
 * (`platform/db/change-sequence.ts`): `group_keys_version`, a counter that triggers bump on every
 * write to `group_keys` from any connection or process (one primary-key read); when it moved, the
 * table is reloaded, and the reload derives (so registers for redaction) every new live and
 * look-ahead version. So a rotation by `broker secrets rotate` in another process is honoured by
 * the very next lookup. Inside a transaction on this connection a lookup reads its row instead and
 * keeps nothing.
 */
export class KeyStore {
  private readonly cache = new Map<string, Buffer>();
  /** The SQLite reads; undefined on an engine read asynchronously (see {@link applyHead}). */
  private readonly sync?: {
    versionRow: { get(group: string, version: number): Pick<KeyRow, 'retiresAt'> | undefined };
    /** `group_keys_version.version`: the keys' change sequence. */
    changes: ChangeSequence;
    loadStmt: { all(): Pick<KeyRow, 'group' | 'version' | 'retiresAt'>[] };
    db: Db;
  };
  private readonly rows?: AsyncKeyRows;
  /** The reload in progress or last made by {@link applyHead} (reloads run one at a time). */
  private reloading: Promise<void> = Promise.resolve();
  /** keyid → cached version; rebuilt when {@link counter} moves. */
  private keys = new Map<string, CachedKey>();
  /** The change sequence's head when the cache was loaded (-1: never). */
  private counter = -1;

  private readonly store: GroupKeyStore;

  /**
   * @param db the SQLite database (each lookup reads the change sequence itself), or the rows of
   *   an engine read asynchronously: then the caller must run {@link applyHead} with the head it
   *   read before each request's lookups, and lookups answer from memory as of that head.
   * @param graceMs how long a rotated-out version keeps verifying, in ms.
   * @param store where versions are created and retired (default: the SQLite store over `db`;
   *   required with {@link AsyncKeyRows}).
   */
  constructor(
    db: Db | AsyncKeyRows,
    private readonly masterKey: Buffer,
    private readonly clock: Clock,
    private readonly graceMs: number,
    store?: GroupKeyStore,
  ) {
    if ('sqlite' in db) {
      this.sync = {
        db,
        versionRow: db.sqlite.prepare('SELECT retires_at AS retiresAt FROM group_keys WHERE "group" = ? AND version = ?') as NonNullable<KeyStore['sync']>['versionRow'],
        changes: sqliteChangeSequence(db, 'SELECT version FROM group_keys_version WHERE id = 1'),
        loadStmt: db.sqlite.prepare('SELECT "group", version, retires_at AS retiresAt FROM group_keys') as NonNullable<KeyStore['sync']>['loadStmt'],
      };
      this.store = store ?? sqliteGroupKeyStore(db, clock);
    } else {
      if (!store) throw new Error('KeyStore over asynchronous rows needs its GroupKeyStore');
      this.rows = db;
      this.store = store;
    }
  }

  /**
   * Brings the keys in memory up to the change sequence's head `head` (`group_keys_version`, read
   * by the caller before the request's lookups): reloads `group_keys` when it is past what memory
   * holds. Reloads run one at a time. A no-op on SQLite, whose lookups read the head themselves.
   * @throws (rejects) the engine's error when the rows cannot be read (the caller fails closed).
   */
  applyHead(head: number): Promise<void> {
    const rows = this.rows;
    if (!rows) return Promise.resolve();
    const next = this.reloading.catch(() => undefined).then(async () => {
      if (head <= this.counter) return;
      this.apply(await rows.all(), head);
    });
    this.reloading = next;
    return next;
  }

  /**
   * Gives every listed group a version-1 key if it has none (audited as `key.created`), then
   * derives every live and look-ahead secret of every group in `group_keys`, which registers them
   * for redaction (see the class note). Idempotent; writes nothing when every group has a key
   * (so a read-only database whose groups are keyed still starts).
   * @throws the store's rejection (503 `audit_unavailable`, the SQLite error); start-up stops.
   */
  async ensureGroups(groups: Iterable<string>): Promise<void> {
    const keyed = await this.store.groupsWithKeys();
    for (const group of groups) {
      if (!keyed.has(group)) await this.store.change(group, firstVersionPlan(group));
    }
    this.deriveLive(this.sync ? this.sync.loadStmt.all() : await this.rows!.all());
  }

  /**
   * Derives (and caches, which registers for redaction) each listed version that has not retired
   * by now, and the {@link LOOKAHEAD_VERSIONS} versions after each group's newest. A version derived
   * once stays cached and registered, so this costs HKDF runs only for versions not seen before.
   */
  private deriveLive(rows: readonly Pick<KeyRow, 'group' | 'version' | 'retiresAt'>[]): void {
    const now = this.clock.now();
    const newest = new Map<string, number>();
    for (const row of rows) {
      if (row.retiresAt === null || row.retiresAt > now) this.secret(row.group, row.version);
      newest.set(row.group, Math.max(newest.get(row.group) ?? 0, row.version));
    }
    for (const [group, version] of newest) {
      for (let next = version + 1; next <= version + LOOKAHEAD_VERSIONS; next++) this.secret(group, next);
    }
  }

  /**
   * Resolves a `keyid` (`<group>:<version>`) to its secret. From memory (see the class note): one
   * read of the change sequence, then a Map lookup; the table only after a change, or inside a
   * transaction.
   * @returns null when the id is malformed, unknown, or past its retirement instant. The returned
   *   key is frozen and shared between lookups.
   */
  lookup(keyid: string): GroupKey | null {
    if (this.sync) {
      if (this.sync.changes.inTransaction()) return this.lookupInTransaction(keyid);
      const counter = this.sync.changes.head();
      if (counter !== this.counter) this.apply(this.sync.loadStmt.all(), counter);
    } else if (this.counter < 0) {
      throw new Error('group keys not loaded: applyHead must run before a lookup');
    }
    const cached = this.keys.get(keyid);
    if (cached === undefined) return null;
    if (cached.retiresAt !== null && this.clock.now() >= cached.retiresAt) return null;
    return (cached.key ??= Object.freeze({ group: cached.group, version: cached.version, keyid, secret: this.secret(cached.group, cached.version) }));
  }

  /** The lookup straight from `group_keys`, for a caller inside a transaction (nothing is cached). */
  private lookupInTransaction(keyid: string): GroupKey | null {
    const m = KEYID_RE.exec(keyid);
    if (!m) return null;
    const group = m[1]!;
    const version = Number(m[2]);
    const row = this.sync!.versionRow.get(group, version);
    if (!row) return null;
    if (row.retiresAt !== null && this.clock.now() >= row.retiresAt) return null;
    return { group, version, keyid, secret: this.secret(group, version) };
  }

  /** Replaces the cache with `rows` (all of `group_keys`), as of the change sequence's head `counter`. */
  private apply(rows: readonly Pick<KeyRow, 'group' | 'version' | 'retiresAt'>[], counter: number): void {
    const keys = new Map<string, CachedKey>();
    this.deriveLive(rows);
    for (const row of rows) {
      const keyid = `${row.group}:${row.version}`;
      if (!KEYID_RE.test(keyid)) continue;
      const prev = this.keys.get(keyid);
      keys.set(keyid, { group: row.group, version: row.version, retiresAt: row.retiresAt, key: prev?.key ?? null });
    }
    this.keys = keys;
    this.counter = counter;
  }

  /**
   * The group's current (newest) key.
   * @throws Error when the group has no key (not in policies/groups.json).
   */
  current(group: string): GroupKey {
    const row = this.sync
      ? (this.sync.db.sqlite.prepare('SELECT MAX(version) AS version FROM group_keys WHERE "group" = ?').get(group) as { version: number | null })
      : { version: this.newestInMemory(group) };
    if (row.version === null) throw new Error(`group ${group} has no key; is it in policies/groups.json?`);
    return { group, version: row.version, keyid: `${group}:${row.version}`, secret: this.secret(group, row.version) };
  }

  /** The newest version of `group` in memory (as of the last {@link applyHead}), or null. */
  private newestInMemory(group: string): number | null {
    let newest: number | null = null;
    for (const k of this.keys.values()) if (k.group === group && (newest === null || k.version > newest)) newest = k.version;
    return newest;
  }

  /**
   * Rotates a group's key: creates version N+1 and retires every older live version after the
   * grace period. Audited as `key.rotated`.
   * @returns the new current key.
   * @throws Error when the group has no key; the store's rejection (503 `audit_unavailable`).
   */
  async rotate(group: string, actor: string): Promise<GroupKey> {
    const version = await this.store.change(group, rotationPlan(group, actor, this.graceMs));
    return { group, version, keyid: `${group}:${version}`, secret: this.secret(group, version) };
  }

  private secret(group: string, version: number): Buffer {
    const id = `${group}:${version}`;
    let s = this.cache.get(id);
    if (!s) {
      s = deriveGroupSecret(this.masterKey, group, version);
      this.cache.set(id, s);
    }
    return s;
  }
}

/** A group without a key gets version 1 (audited `key.created`); one that has a key (another process was first) is left. */
function firstVersionPlan(group: string) {
  return (rows: GroupKeyRow[]): Planned<GroupKeyChange, void> =>
    rows.length > 0
      ? { result: undefined }
      : { write: { add: { version: 1 } }, audit: [{ actor: 'system', kind: 'key.created', subject: `group:${group}`, detail: { group, version: 1 } }], result: undefined };
}

/**
 * Rotation of `group`'s key at `now`: version N+1 is added, and every version still live at
 * now + `graceMs` retires then (audited `key.rotated`).
 * @throws Error when the group has no key.
 */
function rotationPlan(group: string, actor: string, graceMs: number) {
  return (rows: GroupKeyRow[], now: number): Planned<GroupKeyChange, number> => {
    if (rows.length === 0) throw new Error(`group ${group} has no key; is it in policies/groups.json?`);
    const current = Math.max(...rows.map((r) => r.version));
    const next = current + 1;
    const retiresAt = now + graceMs;
    const versions = rows.filter((r) => r.retiresAt === null || r.retiresAt > retiresAt).map((r) => r.version);
    const detail = { group, version: next, previous: current, previous_retires_at: new Date(retiresAt).toISOString() };
    return { write: { retire: { versions, retiresAt }, add: { version: next } }, audit: [{ actor, kind: 'key.rotated', subject: `group:${group}`, detail }], result: next };
  };
}

/**
 * Writes `<dir>/.ipc_secret` (mode 0600) for mounting into a group's container: JSON
 * `{"keyid": "<group>:<version>", "alg": "hmac-sha256", "secret": "<base64url>"}`.
 * @returns the file path.
 */
export function exportSecretFile(dir: string, key: GroupKey): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, '.ipc_secret');
  const body = JSON.stringify({ keyid: key.keyid, alg: 'hmac-sha256', secret: key.secret.toString('base64url') });
  fs.writeFileSync(file, `${body}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}
