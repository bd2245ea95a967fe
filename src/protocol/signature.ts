/**
 * RFC 9421 HTTP Message Signatures: the signature base (§2.5), derived components (§2.2), header
 * field components (§2.1), and the `hmac-sha256` algorithm (§3.3.3). Structured fields (RFC 8941)
 * are parsed and serialized with `structured-headers`; crypto is `node:crypto`.
 *
 * This module is profile-free: the broker's signing profile (label, parameters, covered
 * components) is `profile.ts`, which the client signs with and the verifier
 * (`src/platform/http/verify.ts`) checks, with freshness, on top of this module.
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
  /** The inner list exactly as parsed (RFC 8941 values). */
  innerList: InnerList;
  /** The `@signature-params` value (RFC 9421 §2.3): `innerList` serialized again (RFC 8941 §4.1.1.1). */
  signatureParams: string;
  signature: Buffer;
}

/** The `Signature-Input` member of one label, parsed: what {@link parseSignatureInput} returns. */
export interface ParsedSignatureInput {
  readonly components: readonly string[];
  readonly params: Parameters;
  /** The `@signature-params` value (RFC 9421 §2.3). */
  readonly signatureParams: string;
}

/** Why a signature could not be parsed or a component not resolved. */
export class SignatureFormatError extends Error {
  override name = 'SignatureFormatError';
}

const SUPPORTED_DERIVED = new Set(['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query']);

/**
 * Parses the `Signature-Input` and `Signature` fields and returns the member with `label`, with
 * its inner list (see {@link parseSignedFields}, which verification uses).
 * @returns null when either field is absent or has no member with that label.
 * @throws SignatureFormatError when a field is not a valid RFC 8941 dictionary, or the member is
 *   not an inner list of strings without parameters / a byte sequence, or a component repeats.
 */
export function parseSignature(signatureInput: string | null, signature: string | null, label: string): ParsedSignature | null {
  const fields = parseSignedFields(signatureInput, signature, label);
  if (fields === null) return null;
  const { components, params, signatureParams: serialized } = fields.input;
  return {
    label,
    components: [...components],
    params,
    innerList: [components.map((c): Item => [c, new Map()]), params], // components carry no parameters (checked)
    signatureParams: serialized,
    signature: fields.signature,
  };
}

/**
 * The `label` member of `Signature-Input` ({@link parseSignatureInput}: components, parameters,
 * `@signature-params` value) and of `Signature` (the signature bytes), as
 * {@link parseSignature} reads them, without copying the components or building the inner list.
 * @returns null when either field is absent or has no member with that label.
 * @throws SignatureFormatError as {@link parseSignature}.
 */
export function parseSignedFields(signatureInput: string | null, signature: string | null, label: string): { input: ParsedSignatureInput; signature: Buffer } | null {
  if (!signatureInput || !signature) return null;
  const input = parseInputMember(signatureInput, label);
  if (input instanceof MalformedField) throw input.error;
  let sigs: ReturnType<typeof parseDictionary>;
  try {
    sigs = parseDictionary(signature);
  } catch (err) {
    throw new SignatureFormatError(`malformed structured field: ${(err as Error).message}`);
  }
  const sig = sigs.get(label);
  if (input === null || sig === undefined) return null;
  if (input instanceof SignatureFormatError) throw input;
  if (!(sig[0] instanceof ArrayBuffer)) throw new SignatureFormatError(`Signature member "${label}" is not a byte sequence`);
  return { input, signature: Buffer.from(sig[0]) };
}

/**
 * Parses a `Signature-Input` field (an RFC 8941 dictionary, with `structured-headers`) and returns
 * the member with `label`: its covered components, parameters and `@signature-params` value.
 * @returns null when the dictionary has no member `label`.
 * @throws SignatureFormatError when the field is not a valid dictionary, or the member is not an
 *   inner list of strings without parameters, or a component repeats.
 */
export function parseSignatureInput(field: string, label: string): ParsedSignatureInput | null {
  const entry = parseInputMember(field, label);
  if (entry instanceof MalformedField) throw entry.error;
  if (entry instanceof SignatureFormatError) throw entry;
  return entry;
}

/**
 * A `Signature-Input` field that is not an RFC 8941 dictionary at all: thrown at once, whereas a
 * member that is unusable is thrown only when the `Signature` field has a member of that label.
 */
class MalformedField {
  constructor(readonly error: SignatureFormatError) {}
}
/** What one field value gives for one label: the member, its absence, or why it is unusable. */
type InputEntry = ParsedSignatureInput | null | SignatureFormatError | MalformedField;

function parseInputMember(field: string, label: string): InputEntry {
  let inputs: ReturnType<typeof parseDictionary>;
  try {
    inputs = parseDictionary(field);
  } catch (err) {
    return new MalformedField(new SignatureFormatError(`malformed structured field: ${(err as Error).message}`));
  }
  const input = inputs.get(label);
  if (input === undefined) return null;
  if (!Array.isArray(input[0])) return new SignatureFormatError(`Signature-Input member "${label}" is not an inner list`);
  const innerList = input as InnerList;
  const components: string[] = [];
  for (const item of innerList[0]) {
    if (typeof item[0] !== 'string') return new SignatureFormatError('covered components must be strings');
    if (item[1].size > 0) return new SignatureFormatError(`component parameters are not supported ("${item[0]}")`);
    components.push(item[0]);
  }
  for (let i = 1; i < components.length; i++) {
    if (components.lastIndexOf(components[i]!, i - 1) !== -1) return new SignatureFormatError('a component is covered twice');
  }
  let signatureParams: string;
  try {
    signatureParams = serializeSignatureParams(innerList);
  } catch (err) {
    return new SignatureFormatError(`Signature-Input member "${label}" cannot be serialized again: ${(err as Error).message}`);
  }
  if (LINE_BREAK.test(signatureParams)) return new SignatureFormatError('the signature parameters contain a line break');
  return { components, params: innerList[1], signatureParams };
}

/**
 * Serializes an inner list (RFC 8941 §4.1.1.1, with its parameters §4.1.1.2) with
 * `structured-headers`: the `@signature-params` value (RFC 9421 §2.3) and the `Signature-Input`
 * member value.
 * @throws SerializeError (from `structured-headers`) for a value RFC 8941 cannot carry.
 */
export function serializeSignatureParams(innerList: InnerList): string {
  return serializeInnerList(innerList);
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
 * `@path` and `@query` come from {@link requestTarget} (one URL parse).
 * @param params the signature's inner list, or its `@signature-params` value already serialized
 *   (as {@link parseSignature} returns it).
 * @throws SignatureFormatError when a component cannot be resolved or contains a line break.
 */
export function signatureBase(req: SignableRequest, components: readonly string[], params: InnerList | string): string {
  let target: RequestTarget | undefined;
  let base = '';
  for (const id of components) {
    let value: string;
    if (id === '@method') value = req.method.toUpperCase();
    else if (id === '@path') value = (target ??= requestTarget(req.url)).path;
    else if (id === '@query') value = (target ??= requestTarget(req.url)).query;
    else value = componentValue(req, id);
    if (LINE_BREAK.test(value)) throw new SignatureFormatError(`component "${id}" contains a line break`);
    base += `"${id}": ${value}\n`;
  }
  return `${base}"@signature-params": ${typeof params === 'string' ? params : serializeSignatureParams(params)}`;
}
const LINE_BREAK = /[\r\n]/;

/** The `@path` and `@query` values of a request (RFC 9421 §2.2.6, §2.2.7). */
export interface RequestTarget {
  /** The absolute path, `/` when empty. */
  path: string;
  /** `?` and the query, or `?` alone when there is none (or it is empty). */
  query: string;
}

/**
 * `@path` and `@query` of an absolute request URL (WHATWG `URL`: `pathname`, and `search` or `?`).
 * @throws TypeError when `url` is not a valid absolute URL (from `URL`).
 */
export function requestTarget(url: string): RequestTarget {
  const parsed = new URL(url);
  return { path: parsed.pathname || '/', query: parsed.search === '' ? '?' : parsed.search };
}

/** Builds the inner list `(<components>);<params>` for `Signature-Input`, params in the given order. */
export function signatureParams(components: string[], params: Record<string, BareItem>): InnerList {
  return [components.map((c): Item => [c, new Map()]), new Map(Object.entries(params))];
}

/** HMAC-SHA256 of the signature base (RFC 9421 §3.3.3), with `node:crypto`. */
export function hmacSha256(secret: Uint8Array, base: string): Buffer {
  return createHmac('sha256', secret).update(base, 'utf8').digest();
}

/** Constant-time comparison of an expected and a presented MAC; false on length mismatch. */
export function macEquals(expected: Buffer, presented: Buffer): boolean {
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}
