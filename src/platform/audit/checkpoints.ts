/**
 * Signed audit checkpoints, as CloudTrail's digest files: `broker serve` signs the chain's head
 * (`{seq, hash, ts}`) with its own Ed25519 key at least every `BROKER_CHECKPOINT_EVERY_ROWS` rows
 * or `BROKER_CHECKPOINT_INTERVAL_S` seconds (when rows were added), and once more on a graceful
 * stop, and writes each checkpoint outside the database, to `BROKER_CHECKPOINT_DIR` (default
 * `<dataDir>/checkpoints`; point it at another disk or a mount of another host). Rows behind a
 * checkpoint can then be neither removed from the end nor rewritten and rehashed without
 * `broker audit verify` noticing, as long as the checkpoint survives.
 *
 * Layout of the directory, append-only (nothing in it is ever overwritten or deleted by the broker):
 * - `checkpoint-<seq, 16 digits>-<first 16 hex of hash>.json`, one per checkpoint: one JSON line
 *   `{seq, hash, ts, kid, jws}`, where `jws` is an RFC 7515 compact JWS (`alg: EdDSA`, `kid`,
 *   `typ: nanoclaw-audit-checkpoint`) over the RFC 8785 canonical JSON of `{seq, hash, ts}`;
 *   `seq`, `hash` and `ts` beside it are a readable copy that must equal the signed payload.
 *   Written to a temporary file, fsynced, hard-linked to its name (a link never replaces a file)
 *   and the directory fsynced, so a crash leaves a whole checkpoint or none.
 * - `checkpoint-key-<kid>.jwk`: the public JWK (`{kty, crv, x, kid, alg, use}`) of each signing
 *   key, `kid` its RFC 7638 thumbprint, so an auditor can verify the checkpoints off the host. The
 *   private key is `<dataDir>/checkpoint.key` (mode 0600), never in this directory.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import canonicalize from 'canonicalize';
import { calculateJwkThumbprint, CompactSign, compactVerify, type JWK } from 'jose';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import { publicJwk, type BrokerSigningKey } from '../signing-key.js';
import { fsyncPath } from '../fsync.js';
import type { SignedPoint } from './chain.js';
import { chainHead } from './export.js';
import { chainHeadOf, rowHashOf, sqliteRowHash } from './source.js';

/** The JWS `typ` of a checkpoint. */
export const CHECKPOINT_TYP = 'nanoclaw-audit-checkpoint';
const FILE_RE = /^checkpoint-([0-9]{16})-([0-9a-f]{16})\.json$/;
const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest');
const Payload = z.strictObject({ seq: z.number().int().min(1), hash: Hex64, ts: z.iso.datetime() });
const CheckpointFile = Payload.extend({ kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an RFC 7638 thumbprint'), jws: z.string() });

/** A checkpoint whose signature verified: the signed point, the key's `kid`, and the file it came from. */
export interface Checkpoint extends SignedPoint {
  kid: string;
  file: string;
}

/** A checkpoint file that does not verify (forged, edited, or signed by a key not published beside it). */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** The file name of the checkpoint of (seq, hash). */
export function checkpointFileName(seq: number, hash: string): string {
  return `checkpoint-${String(seq).padStart(16, '0')}-${hash.slice(0, 16)}.json`;
}

/** The file name of a signing key's public JWK. */
export function checkpointKeyFileName(kid: string): string {
  return `checkpoint-key-${kid}.jwk`;
}

/**
 * Creates `dir` when missing and writes the key's public JWK to `dir/checkpoint-key-<kid>.jwk`
 * unless it is there already (never overwritten).
 * @returns the JWK file's path.
 * @throws the fs error when the directory or the file cannot be written.
 */
export function publishCheckpointKey(dir: string, key: BrokerSigningKey): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, checkpointKeyFileName(key.kid));
  const jwk = { ...publicJwk(key), kid: key.kid, alg: 'EdDSA', use: 'sig' };
  try {
    fs.writeFileSync(file, `${JSON.stringify(jwk)}\n`, { mode: 0o644, flag: 'wx' });
    fsyncPath(file, 'file');
    fsyncPath(dir, 'dir');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return file;
}

/**
 * Signs `point` with `key` and writes it to `dir` as {@link checkpointFileName} (see the module
 * comment for the format and the crash-safe write). The directory must exist
 * ({@link publishCheckpointKey} makes it).
 * @returns the checkpoint, or null when one for the same (seq, hash) is there already.
 * @throws the fs error; the temporary file is removed.
 */
export async function writeCheckpoint(dir: string, key: BrokerSigningKey, point: SignedPoint): Promise<Checkpoint | null> {
  const payload = { seq: point.seq, hash: point.hash, ts: point.ts };
  const jws = await new CompactSign(new TextEncoder().encode(canonicalize(payload)))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: CHECKPOINT_TYP })
    .sign(key.privateKey);
  const file = path.join(dir, checkpointFileName(point.seq, point.hash));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, `${JSON.stringify({ ...payload, kid: key.kid, jws })}\n`, { mode: 0o644 });
    fsyncPath(tmp, 'file');
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncPath(dir, 'dir');
  return { ...payload, kid: key.kid, file };
}

/**
 * Reads and verifies every checkpoint in `dir`: each file must be a `{seq, hash, ts, kid, jws}`
 * line whose JWS verifies (EdDSA) with the public key `checkpoint-key-<kid>.jwk` beside it (whose
 * thumbprint must be `kid`), whose signed payload equals the readable copy, and whose name matches
 * its seq and hash. Other files are ignored.
 * @returns the checkpoints in seq order; none when `dir` does not exist and `mustExist` is false.
 * @throws CheckpointError naming the first file that does not verify; the fs error when `dir`
 *   cannot be read (or does not exist and `mustExist` is true).
 */
export async function readCheckpoints(dir: string, mustExist = false): Promise<Checkpoint[]> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !mustExist) return [];
    throw err;
  }
  const keys = new Map<string, Promise<KeyObject>>();
  const out: Checkpoint[] = [];
  for (const name of names.filter((n) => FILE_RE.test(n)).sort()) {
    const file = path.join(dir, name);
    const fail = (reason: string) => new CheckpointError(file, reason);
    let parsed: z.infer<typeof CheckpointFile>;
    try {
      const result = CheckpointFile.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
      if (!result.success) throw fail(`not a checkpoint: ${result.error.issues[0]!.path.join('.')}: ${result.error.issues[0]!.message}`);
      parsed = result.data;
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      throw fail(err instanceof SyntaxError ? 'not JSON' : (err as Error).message);
    }
    let key = keys.get(parsed.kid);
    if (!key) keys.set(parsed.kid, (key = importPublishedKey(dir, parsed.kid)));
    let signed: z.infer<typeof Payload>;
    try {
      const { payload, protectedHeader } = await compactVerify(parsed.jws, await key, { algorithms: ['EdDSA'] });
      if (protectedHeader.kid !== parsed.kid || protectedHeader.typ !== CHECKPOINT_TYP) throw fail(`the JWS header is not a checkpoint's of key ${parsed.kid}`);
      signed = Payload.parse(JSON.parse(new TextDecoder().decode(payload)));
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      throw fail(`the signature does not verify with key ${parsed.kid} (${(err as Error).message})`);
    }
    if (signed.seq !== parsed.seq || signed.hash !== parsed.hash || signed.ts !== parsed.ts) throw fail('the readable seq, hash or ts differs from the signed payload');
    if (name !== checkpointFileName(signed.seq, signed.hash)) throw fail(`the file name does not match the signed seq ${signed.seq} and hash`);
    out.push({ ...signed, kid: parsed.kid, file });
  }
  return out.sort((a, b) => a.seq - b.seq || a.ts.localeCompare(b.ts));
}

/** The published public key of `kid` in `dir`, checked against its thumbprint. */
async function importPublishedKey(dir: string, kid: string): Promise<KeyObject> {
  const file = path.join(dir, checkpointKeyFileName(kid));
  let jwk: JWK;
  try {
    jwk = JSON.parse(fs.readFileSync(file, 'utf8')) as JWK;
  } catch (err) {
    throw new CheckpointError(file, `the public key of ${kid} cannot be read (${(err as Error).message})`);
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || 'd' in jwk) throw new CheckpointError(file, 'not an Ed25519 public JWK');
  if ((await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x })) !== kid) throw new CheckpointError(file, `its thumbprint is not ${kid}`);
  return createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
}

/**
 * The newest checkpoint's point (by seq) in `dir`, read from its readable copy without checking
 * its signature (the writer only needs to know when it last wrote); null when there is none or it
 * cannot be read.
 */
function newestOnDisk(dir: string): SignedPoint | null {
  const newest = fs.readdirSync(dir).filter((n) => FILE_RE.test(n)).sort().at(-1);
  if (!newest) return null;
  try {
    const parsed = CheckpointFile.safeParse(JSON.parse(fs.readFileSync(path.join(dir, newest), 'utf8')));
    return parsed.success ? { seq: parsed.data.seq, hash: parsed.data.hash, ts: parsed.data.ts } : null;
  } catch {
    return null;
  }
}

/** The running checkpoint writer of `serve`. */
export interface CheckpointWriter {
  /** Stops the timer, waits for a write in progress, and writes a final checkpoint when rows were added since the last. Never throws (failures are logged). */
  stop(): Promise<void>;
}

/** What the checkpoint writer runs on: the trail's database, the clock, a logger, its settings and the key it signs with. */
export interface CheckpointDeps {
  config: Pick<Config, 'checkpointDir' | 'checkpointEveryRows' | 'checkpointIntervalS'>;
  /** The trail's database, either engine (each replica on PostgreSQL signs the shared chain into its own directory). */
  database: Database;
  clock: Clock;
  logger: Logger;
  checkpointKey: BrokerSigningKey;
}

/** How long the writer waits before trying again after a failed write, in ms. */
const RETRY_AFTER_MS = 30_000;

/**
 * Starts the background checkpoint writer of `broker serve`: publishes the key's public JWK, then
 * checks about once a second (an unref'd timer) whether a checkpoint is due: rows were added since
 * the last one and either `checkpointEveryRows` of them were, or `checkpointIntervalS` seconds
 * passed, or there is no checkpoint yet (so one is written at start-up). A failed write is logged
 * (error) and retried after 30 s; calls go on (the trail itself stays fail-closed). Logs an error
 * at start when the newest checkpoint in the directory does not match the database (rows removed
 * or rewritten, or a database restored from a backup).
 * @throws the fs error when the directory or the public key file cannot be written (start-up stops).
 */
export function startCheckpoints(deps: CheckpointDeps): CheckpointWriter {
  const { checkpointDir: dir, checkpointEveryRows: everyRows } = deps.config;
  const intervalMs = deps.config.checkpointIntervalS * 1000;
  const keyFile = publishCheckpointKey(dir, deps.checkpointKey);
  let last = newestOnDisk(dir);
  deps.logger.info({ checkpoints: dir, checkpoint_key: keyFile, kid: deps.checkpointKey.kid, every_rows: everyRows, interval_s: deps.config.checkpointIntervalS }, 'signing audit checkpoints');
  if (last) {
    const checked = last;
    const compare = (hash: string | undefined) => {
      if (hash !== checked.hash) {
        deps.logger.error({ checkpoint: checked, row_hash: hash ?? null }, 'the newest audit checkpoint does not match the database: rows were removed or rewritten, or the database was restored from a backup; run `broker audit verify`');
      }
    };
    // SQLite answers at once (the log line is written before start-up goes on); PostgreSQL later.
    if (deps.database.engine === 'sqlite') compare(sqliteRowHash(deps.database.db.sqlite, checked.seq));
    else rowHashOf(deps.database, checked.seq).then(compare, (err: unknown) => deps.logger.error({ err: (err as Error).message }, 'the newest audit checkpoint could not be compared with the database'));
  }
  let retryAt = 0;
  const attempt = async (final: boolean) => {
    const head = deps.database.engine === 'sqlite' ? chainHead(deps.database.db) : await chainHeadOf(deps.database);
    if (!head || (last && head.seq === last.seq && head.hash === last.hash)) return;
    const now = deps.clock.now();
    const lastMs = last ? Date.parse(last.ts) : Number.NaN;
    const due = final || !last || head.seq - last.seq >= everyRows || head.seq < last.seq || !(now - lastMs < intervalMs);
    if (!due) return;
    const point = { seq: head.seq, hash: head.hash, ts: new Date(now).toISOString() };
    const written = await writeCheckpoint(dir, deps.checkpointKey, point);
    last = point;
    if (written) deps.logger.info({ seq: point.seq, hash: point.hash, file: written.file }, 'audit checkpoint signed');
  };
  const failed = (err: unknown) => {
    retryAt = Date.now() + Math.min(intervalMs, RETRY_AFTER_MS);
    deps.logger.error({ err, checkpoints: dir }, 'an audit checkpoint could not be written');
  };
  let busy: Promise<void> | null = null;
  const tick = () => {
    if (busy || Date.now() < retryAt) return;
    busy = attempt(false)
      .catch(failed)
      .finally(() => (busy = null));
  };
  const timer = setInterval(tick, Math.min(1000, intervalMs));
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      await attempt(true).catch(failed);
    },
  };
}
