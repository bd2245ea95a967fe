/**
 * The broker's signing profile: which RFC 9421 signature an agent group sends and the broker
 * accepts. The agents' client (`src/client`) signs with it and the verifier
 * (`src/platform/http/verify.ts`) checks against it, so the two cannot drift apart.
 *
 * - Label `broker`: `Signature-Input: broker=(…);…` and `Signature: broker=:…:`.
 * - Parameters, in this order: `created` (Unix seconds, an integer), `keyid` (`<group>:<version>`),
 *   `alg="hmac-sha256"` (RFC 9421 §3.3.3, the only one), `tag="nanoclaw-broker"` (§2.3, binds the
 *   signature to this application); an `expires` (integer) is honoured when present.
 * - Covered components: at least `@method`, `@path`, `@query`; a request whose method carries a
 *   body (POST, PUT, PATCH) also covers `content-digest` and `idempotency-key`.
 * - `Content-Digest` (RFC 9530): a `sha-256` member over the exact body bytes is required
 *   (a `sha-512` member, when present, must match too; see `digest.ts`).
 * - `Idempotency-Key`: 1–255 characters of `[A-Za-z0-9._:-]`, required on body methods.
 *
 * Pure: no I/O, no clock, nothing of the platform or the modules.
 */
import { serializeDictionary, type BareItem, type InnerList, type Item, type Parameters } from 'structured-headers';
import { contentDigest } from './digest.js';

/** The signature label the broker reads and the client writes (`Signature-Input: broker=(…)`). */
export const SIGNATURE_LABEL = 'broker';
/** The required `tag` parameter (RFC 9421 §2.3), binding signatures to this application. */
export const SIGNATURE_TAG = 'nanoclaw-broker';
/** The only algorithm accepted (RFC 9421 §3.3.3). */
export const SIGNATURE_ALG = 'hmac-sha256';
/** Components every request covers. */
export const REQUIRED_COMPONENTS = ['@method', '@path', '@query'] as const;
/** Components a request with a body also covers. */
export const BODY_COMPONENTS = ['content-digest', 'idempotency-key'] as const;
/** Methods that carry a body and so need a digest and an idempotency key. */
export const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);
/** `Idempotency-Key` syntax: 1–255 of `[A-Za-z0-9._:-]`. */
export const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{1,255}$/;
/** A `keyid` the broker issues: `<group>:<version>` (group `[a-z][a-z0-9_-]{0,62}`, version 1–999 999 999). */
export const KEYID_RE = /^([a-z][a-z0-9_-]{0,62}):([1-9][0-9]{0,8})$/;

const REQUIRED_WITH_BODY: readonly string[] = [...REQUIRED_COMPONENTS, ...BODY_COMPONENTS];

/** True when `method` (any case) carries a body: it then needs `Content-Digest` and `Idempotency-Key`. */
export function hasBody(method: string): boolean {
  return BODY_METHODS.has(method.toUpperCase());
}

/** The components a request with `method` must cover (what the verifier requires). */
export function requiredComponents(method: string): readonly string[] {
  return hasBody(method) ? REQUIRED_WITH_BODY : REQUIRED_COMPONENTS;
}

/** The `keyid` of a group's key version: `<group>:<version>`. */
export function formatKeyid(group: string, version: number): string {
  return `${group}:${version}`;
}

/** The group a `keyid` names (the part before `:`). */
export function keyidGroup(keyid: string): string {
  return keyid.split(':')[0]!;
}

/**
 * The signature parameters a client sends, in the profile's order: `created`, `keyid`, `alg`, `tag`.
 * @param createdS the `created` parameter, Unix seconds (an integer).
 */
export function signingParams(createdS: number, keyid: string): Record<string, BareItem> {
  return { created: createdS, keyid, alg: SIGNATURE_ALG, tag: SIGNATURE_TAG };
}

/** The `Content-Digest` value a client sends for `body`: `sha-256=:<base64>:` (RFC 9530). */
export function bodyDigest(body: Uint8Array | string): string {
  return contentDigest(body, ['sha-256']);
}

/**
 * The components a client covers for a request: the required ones, plus for a body method each of
 * `content-digest` and `idempotency-key` that the request carries.
 * @param headers lowercase field names of the request.
 */
export function coveredComponents(method: string, headers: Readonly<Record<string, string>>): string[] {
  const components: string[] = [...REQUIRED_COMPONENTS];
  if (hasBody(method)) components.push(...BODY_COMPONENTS.filter((c) => headers[c] !== undefined));
  return components;
}

/** The profile's parameters of a verified signature. Times are Unix seconds. */
export interface ProfileParams {
  keyid: string;
  created: number;
  expires: number | undefined;
}

/**
 * Checks a signature's parameters against the profile: `alg`, `tag`, then `keyid` (a string),
 * `created` (an integer) and `expires` (an integer when present).
 * @returns the parameters, or the sentence saying which one is wrong (the verifier answers it as
 *   401 `signature_invalid`).
 */
export function checkParams(params: Parameters): ProfileParams | string {
  const created = params.get('created');
  const keyid = params.get('keyid');
  const expires = params.get('expires');
  if (params.get('alg') !== SIGNATURE_ALG) return `The signature parameter alg must be "${SIGNATURE_ALG}".`;
  if (params.get('tag') !== SIGNATURE_TAG) return `The signature parameter tag must be "${SIGNATURE_TAG}".`;
  if (typeof keyid !== 'string') return 'The signature parameter keyid must be a string "<group>:<version>".';
  if (typeof created !== 'number' || !Number.isInteger(created)) return 'The signature parameter created must be an integer (Unix seconds).';
  if (expires !== undefined && (typeof expires !== 'number' || !Number.isInteger(expires))) return 'The signature parameter expires must be an integer.';
  return { keyid, created, expires: expires as number | undefined };
}

/**
 * What to sign, as RFC 9421 §5.1's `Accept-Signature` value for a request with `method`: the
 * broker label with the components it must cover, `created`, `alg` and `tag` (no `keyid`: it is
 * the group's).
 */
export function acceptSignature(method: string): string {
  return hasBody(method) ? BODY_ACCEPT : PLAIN_ACCEPT;
}

function accept(components: readonly string[]): string {
  const params: Parameters = new Map<string, BareItem>([
    ['created', true],
    ['alg', SIGNATURE_ALG],
    ['tag', SIGNATURE_TAG],
  ]);
  const wanted: InnerList = [components.map((c): Item => [c, new Map()]), params];
  return serializeDictionary(new Map([[SIGNATURE_LABEL, wanted]]));
}
const PLAIN_ACCEPT = accept(REQUIRED_COMPONENTS);
const BODY_ACCEPT = accept(REQUIRED_WITH_BODY);
