/**
 * RFC 9530 `Content-Digest`: a structured dictionary of algorithm → byte sequence over the
 * message content. The broker requires `sha-256` and also checks `sha-512` when present; other
 * algorithms are ignored (RFC 9530 §2).
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';
import { parseDictionary, serializeDictionary, type Item } from 'structured-headers';

const ALGORITHMS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
/** `sha-256=:` + 44 base64 characters + `:`. */
const CANONICAL_SHA256_LENGTH = 54;
/** Digest algorithms this broker computes (RFC 9530 §5, IANA registry). */
export type DigestAlgorithm = keyof typeof ALGORITHMS;

/** Serializes a `Content-Digest` value for `body`, e.g. `sha-256=:X48E…=:`. */
export function contentDigest(body: Uint8Array | string, algorithms: DigestAlgorithm[] = ['sha-256']): string {
  return serializeDictionary(
    new Map(algorithms.map((alg): [string, Item] => [alg, [createHash(ALGORITHMS[alg]).update(body).digest(), new Map()]])),
  );
}

/** SHA-256 of `body` (32 bytes): one-shot `crypto.hash` where Node has it (20.12+), `createHash` otherwise. */
export const sha256: (body: Uint8Array) => Buffer =
  typeof hash === 'function' ? (body) => hash('sha256', body, 'buffer') as Buffer : (body) => createHash('sha256').update(body).digest();

/**
 * Checks a `Content-Digest` field against the body bytes.
 * A field that is exactly the serialization of `{sha-256: <the body's digest>}` (what the broker's
 * client sends, `sha-256=:<base64>:`) is valid without parsing it: it parses to just that member.
 * Anything else is parsed (RFC 8941 dictionary) and checked member by member.
 * @param bodySha256 the body's SHA-256 when the caller already has it ({@link sha256}).
 * @returns null when valid, or a reason: absent, unparsable, no `sha-256` member, or a mismatch.
 */
export function checkContentDigest(header: string | null, body: Uint8Array, bodySha256: Buffer = sha256(body)): string | null {
  if (!header) return 'Content-Digest is missing';
  if (header.length === CANONICAL_SHA256_LENGTH && header === `sha-256=:${bodySha256.toString('base64')}:`) return null;
  let dict: ReturnType<typeof parseDictionary>;
  try {
    dict = parseDictionary(header);
  } catch {
    return 'Content-Digest is not a structured dictionary';
  }
  if (!dict.has('sha-256')) return 'Content-Digest has no sha-256 member';
  for (const [alg, nodeAlg] of Object.entries(ALGORITHMS)) {
    const member = dict.get(alg);
    if (member === undefined) continue;
    if (!(member[0] instanceof ArrayBuffer)) return `Content-Digest ${alg} is not a byte sequence`;
    const presented = Buffer.from(member[0]);
    const actual = alg === 'sha-256' ? bodySha256 : createHash(nodeAlg).update(body).digest();
    if (presented.length !== actual.length || !timingSafeEqual(presented, actual)) return `Content-Digest ${alg} does not match the body`;
  }
  return null;
}
