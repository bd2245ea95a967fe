import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { registerSecret } from '../audit/redact.js';

/** The broker's own Ed25519 signing key for bearer tokens. `kid` is its RFC 7638 thumbprint. */
export interface BrokerSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  /** The key file (`<dataDir>/token.key`). */
  path: string;
}

/**
 * Reads the broker's token-signing key from `<dataDir>/token.key` (an Ed25519 private JWK as
 * JSON), creating it with mode 0600 at first start, like the master key. The private part is
 * registered for redaction.
 * @throws Error when the file exists but is not an Ed25519 private JWK.
 */
export function loadOrCreateSigningKey(dataDir: string): BrokerSigningKey {
  const file = path.join(dataDir, 'token.key');
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    const { privateKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(file, `${JSON.stringify(privateKey.export({ format: 'jwk' }))}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const jwk = JSON.parse(fs.readFileSync(file, 'utf8')) as JsonWebKey;
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new Error(`${file}: expected an Ed25519 private JWK`);
  }
  registerSecret(jwk.d);
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey), kid: thumbprintSync(jwk), path: file };
}

/** RFC 7638 thumbprint of an OKP key: sha256 over `{"crv","kty","x"}` (lexicographic members), base64url. */
function thumbprintSync(jwk: JsonWebKey): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url');
}
