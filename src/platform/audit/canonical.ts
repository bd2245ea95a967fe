/**
 * RFC 8785 (JSON Canonicalization Scheme) text of the audit trail's values, byte for byte what the
 * `canonicalize` library returns, with a fast path for what every audit row holds: strings,
 * finite numbers, booleans, null, and flat objects of those (a row's `detail` after redaction).
 * Anything else (nested objects, arrays, `toJSON`, a lone UTF-16 surrogate, NaN, Infinity) goes to
 * the library, which also throws for what has no canonical form.
 *
 * Why the fast path is exact: for those values the library returns `JSON.stringify(value)` for a
 * primitive and `{` + `JSON.stringify(key):JSON.stringify(value)` pairs in `Object.keys().sort()`
 * order (UTF-16 code unit order, RFC 8785 §3.2.3), skipping undefined and symbol members, + `}`;
 * this code does the same, without the library's per-call `Set` (cycle detection a flat object does
 * not need) and without recursing per member. The lone-surrogate check the library runs per
 * string (it throws on one; `JSON.stringify` would escape it instead) is one regular expression
 * test here, and any hit goes to the library.
 */
import canonicalize from 'canonicalize';

/** A UTF-16 surrogate code unit, paired or not: such strings take the library's path (it throws on a lone one). */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * The RFC 8785 text of a string, a finite number, a boolean or null; undefined for another value
 * (the caller then uses the library).
 */
function primitiveText(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return SURROGATE.test(v) ? undefined : JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : undefined;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      return v === null ? 'null' : undefined;
    default:
      return undefined;
  }
}

/**
 * The RFC 8785 canonical JSON text of `value`, identical to `canonicalize(value)`.
 * @throws Error (from `canonicalize`) on NaN, Infinity, a lone surrogate or a cycle.
 */
export function canonicalJson(value: unknown): string | undefined {
  const text = primitiveText(value);
  if (text !== undefined) return text;
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalize(value);
  }
  const obj = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v === undefined || typeof v === 'symbol') continue;
    const k = primitiveText(key);
    const t = primitiveText(v);
    if (k === undefined || t === undefined) return canonicalize(value); // nested, or no canonical form: the library decides
    out += out === '{' ? `${k}:${t}` : `,${k}:${t}`;
  }
  return `${out}}`;
}
