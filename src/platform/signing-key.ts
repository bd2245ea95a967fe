/**
 * The broker's own Ed25519 signing keys as files in the data directory (a private JWK, mode 0600):
 * loading, creating, replacing atomically, and their public JWK. Bearer tokens and audit
 * checkpoints are signed with them.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { registerSecret } from './audit/redact.js';
import { fsyncPath } from './fsync.js';

/**
 * One of the broker's own Ed25519 signing keys (`token.key` for bearer tokens, `checkpoint.key` for
 * audit checkpoints). `kid` is its RFC 7638 thumbprint.
 */
export interface BrokerSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  /** The key file (`<dataDir>/token.key`). */
  path: string;
}

/** The public half of a signing key as a JWK: `{crv: 'Ed25519', kty: 'OKP', x}` (never `d`). */
export interface SigningPublicJwk {
  crv: string;
  kty: string;
  x: string;
}

/**
 * Reads one of the broker's Ed25519 signing keys from `<dataDir>/<name>` (a private JWK as JSON;
 * `token.key` signs bearer tokens, `checkpoint.key` audit checkpoints), creating it with mode 0600
 * at first start, like the master key. The private part is registered for redaction.
 * @throws Error when the file exists but is not an Ed25519 private JWK.
 */
export function loadOrCreateSigningKey(dataDir: string, name = 'token.key'): BrokerSigningKey {
  const file = path.join(dataDir, name);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const { privateKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(file, `${JSON.stringify(privateKey.export({ format: 'jwk' }))}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readSigningKey(file);
}

/**
 * Reads a signing key file (an Ed25519 private JWK as JSON) and registers its private part for
 * redaction.
 * @throws Error when the file cannot be read or is not an Ed25519 private JWK.
 */
export function readSigningKey(file: string): BrokerSigningKey {
  const jwk = JSON.parse(fs.readFileSync(file, 'utf8')) as JsonWebKey;
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new Error(`${file}: expected an Ed25519 private JWK`);
  }
  return fromPrivateJwk(jwk, file);
}

/**
 * Makes a new Ed25519 signing key in memory, meant for `file` (nothing is written: see
 * {@link writeSigningKeyFile}). Its private part is registered for redaction.
 */
export function generateSigningKey(file: string): BrokerSigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return fromPrivateJwk(privateKey.export({ format: 'jwk' }), file);
}

/**
 * Replaces `key.path` with `key` atomically (write-file-atomic: a temp file in the same
 * directory, mode 0600, fsynced, renamed over the key file), then fsyncs the directory so the
 * rename survives a crash: a crash leaves either the old or the new key file, never a partial one.
 * @throws the fs error; the temp file is removed and the old key file is untouched.
 */
export function writeSigningKeyFile(key: BrokerSigningKey): void {
  writeFileAtomic.sync(key.path, `${JSON.stringify(key.privateKey.export({ format: 'jwk' }))}\n`, { mode: 0o600, fsync: true });
  fsyncPath(path.dirname(key.path), 'dir');
}

/** The public JWK of a signing key: `{crv, kty, x}`, the members its `kid` is computed over. */
export function publicJwk(key: BrokerSigningKey): SigningPublicJwk {
  const jwk = key.publicKey.export({ format: 'jwk' });
  return { crv: jwk.crv!, kty: jwk.kty!, x: jwk.x! };
}

function fromPrivateJwk(jwk: JsonWebKey, file: string): BrokerSigningKey {
  registerSecret(jwk.d);
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey), kid: thumbprintSync(jwk), path: file };
}

/** RFC 7638 thumbprint of an OKP key: sha256 over `{"crv","kty","x"}` (lexicographic members), base64url. */
function thumbprintSync(jwk: JsonWebKey): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url');
}
