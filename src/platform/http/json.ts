/**
 * Request bodies as I-JSON (RFC 7493): UTF-8 JSON whose strings are well-formed Unicode. A body
 * whose text escapes a lone UTF-16 surrogate (`"\uD800"` without its pair) parses in JavaScript
 * but cannot be canonicalised (RFC 8785) for the audit trail's hash, so it is refused at the door
 * rather than failing the audit write after the decision.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** An escape of a UTF-16 surrogate in JSON text: the only way a lone one reaches a parsed string. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** A lone surrogate: with the `u` flag, a valid pair is one code point and is not in `Cs`. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why {@link parseIJson} refused a body: not UTF-8 JSON, or a lone surrogate in a string or member name. */
export type IJsonRefusal = 'not_json' | 'lone_surrogate';

/**
 * Parses `raw` (the request body's bytes) as I-JSON.
 * @returns `{value}`, or `{refusal}`: `not_json` for bytes that are not UTF-8 JSON (RFC 8259),
 *   `lone_surrogate` for a string or member name holding an unpaired surrogate (RFC 7493 §2.1).
 *   Costs one regex scan of the text when no surrogate escape is present (the usual case).
 */
export function parseIJson(raw: Uint8Array): { value: unknown; refusal?: undefined } | { refusal: IJsonRefusal } {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(raw);
    value = JSON.parse(text);
  } catch {
    return { refusal: 'not_json' };
  }
  if (SURROGATE_ESCAPE.test(text) && hasLoneSurrogate(value)) return { refusal: 'lone_surrogate' };
  return { value };
}

/** The `detail` of a 400 `malformed_json` for each {@link IJsonRefusal}. */
export const IJSON_REFUSAL_DETAIL: Record<IJsonRefusal, string> = {
  not_json: 'The request body is not valid UTF-8 JSON.',
  lone_surrogate: 'The request body holds a lone UTF-16 surrogate (a \\uD800–\\uDFFF escape without its pair); I-JSON (RFC 7493 §2.1) forbids it.',
};

function hasLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (Array.isArray(v)) return v.some(hasLoneSurrogate);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(x));
  return false;
}
