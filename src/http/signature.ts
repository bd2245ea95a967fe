/**
 * RFC 9421 HTTP Message Signatures: the signature base (§2.5), derived components (§2.2), header
 * field components (§2.1), and the `hmac-sha256` algorithm (§3.3.3). Structured fields (RFC 8941)
 * are parsed and serialized with `structured-headers`; crypto is `node:crypto`.
 *
 * This module is profile-free: {@link verifyBrokerSignature} in `verify.ts` applies the broker's
 * profile (label, required components, `tag`, freshness) on top of it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  parseDictionary,
  serializeInnerList,
  type BareItem,
  type InnerList,
  type Item,
  type Parameters,
} from 'structured-headers';

/** The parts of an HTTP request a signature can cover. `url` is the absolute target URI. */
export interface SignableRequest {
  method: string;
  url: string;
  headers: { get(name: string): string | null };
}

/** A parsed signature: its covered component ids, parameters, and signature bytes. */
export interface ParsedSignature {
  label: string;
  /** Component identifiers in order, e.g. `["@method", "@path", "content-digest"]`. */
  components: string[];
  /** Signature parameters in order (`created`, `keyid`, `alg`, `tag`, …). */
  params: Parameters;
  /** The inner list exactly as parsed, serialized again for `@signature-params`. */
  innerList: InnerList;
  signature: Buffer;
}

/** Why a signature could not be parsed or a component not resolved. */
export class SignatureFormatError extends Error {
  override name = 'SignatureFormatError';
}

const SUPPORTED_DERIVED = new Set(['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query']);

/**
 * Parses the `Signature-Input` and `Signature` fields and returns the member with `label`.
 * @returns null when either field is absent or has no member with that label.
 * @throws SignatureFormatError when a field is not a valid RFC 8941 dictionary, or the member is
 *   not an inner list of strings / a byte sequence.
 */
export function parseSignature(signatureInput: string | null, signature: string | null, label: string): ParsedSignature | null {
  if (!signatureInput || !signature) return null;
  let inputs: ReturnType<typeof parseDictionary>;
  let sigs: ReturnType<typeof parseDictionary>;
  try {
    inputs = parseDictionary(signatureInput);
    sigs = parseDictionary(signature);
  } catch (err) {
    throw new SignatureFormatError(`malformed structured field: ${(err as Error).message}`);
  }
  const input = inputs.get(label);
  const sig = sigs.get(label);
  if (input === undefined || sig === undefined) return null;
  if (!Array.isArray(input[0])) throw new SignatureFormatError(`Signature-Input member "${label}" is not an inner list`);
  const innerList = input as InnerList;
  const components = innerList[0].map((item: Item) => {
    if (typeof item[0] !== 'string') throw new SignatureFormatError('covered components must be strings');
    if (item[1].size > 0) throw new SignatureFormatError(`component parameters are not supported ("${item[0]}")`);
    return item[0];
  });
  if (new Set(components).size !== components.length) throw new SignatureFormatError('a component is covered twice');
  if (!(sig[0] instanceof ArrayBuffer)) throw new SignatureFormatError(`Signature member "${label}" is not a byte sequence`);
  return { label, components, params: innerList[1], innerList, signature: Buffer.from(sig[0]) };
}

/**
 * Resolves one component's value (RFC 9421 §2.1 and §2.2).
 * @param url `req.url` already parsed, when the caller has it (saves a parse per component).
 * @throws SignatureFormatError for an unsupported derived component or an absent header field.
 */
export function componentValue(req: SignableRequest, id: string, url?: URL): string {
  if (id.startsWith('@')) {
    if (!SUPPORTED_DERIVED.has(id)) throw new SignatureFormatError(`unsupported derived component "${id}"`);
    url ??= new URL(req.url);
    switch (id) {
      case '@method':
        return req.method.toUpperCase();
      case '@target-uri':
        return url.href;
      case '@authority':
        return url.host.toLowerCase();
      case '@scheme':
        return url.protocol.replace(/:$/, '').toLowerCase();
      case '@request-target':
        return `${url.pathname || '/'}${url.search}`;
      case '@path':
        return url.pathname || '/';
      default: // '@query'
        return url.search === '' ? '?' : url.search;
    }
  }
  if (id !== id.toLowerCase()) throw new SignatureFormatError(`header component "${id}" must be lowercase`);
  const value = req.headers.get(id);
  if (value === null) throw new SignatureFormatError(`covered header "${id}" is absent`);
  return value.trim();
}

/**
 * Builds the signature base (RFC 9421 §2.5): one line `"<id>": <value>` per covered component and
 * a last line `"@signature-params": <serialized inner list>`, joined by LF, no trailing LF.
 * @throws SignatureFormatError when a component cannot be resolved.
 */
export function signatureBase(req: SignableRequest, components: string[], innerList: InnerList): string {
  const url = new URL(req.url);
  const lines = components.map((id) => {
    const value = componentValue(req, id, url);
    if (/[\r\n]/.test(value)) throw new SignatureFormatError(`component "${id}" contains a line break`);
    return `"${id}": ${value}`;
  });
  lines.push(`"@signature-params": ${serializeInnerList(innerList)}`);
  return lines.join('\n');
}

/** Builds the inner list `(<components>);<params>` for `Signature-Input`, params in the given order. */
export function signatureParams(components: string[], params: Record<string, BareItem>): InnerList {
  return [components.map((c): Item => [c, new Map()]), new Map(Object.entries(params))];
}

/** HMAC-SHA256 of the signature base (RFC 9421 §3.3.3). */
export function hmacSha256(secret: Uint8Array, base: string): Buffer {
  return createHmac('sha256', secret).update(base, 'utf8').digest();
}

/** Constant-time comparison of an expected and a presented MAC; false on length mismatch. */
export function macEquals(expected: Buffer, presented: Buffer): boolean {
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}
