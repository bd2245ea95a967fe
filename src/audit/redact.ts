/**
 * Secret redaction shared by the audit trail, the logs and provider results.
 *
 * Two layers: exact values registered at run time (the master key, derived group secrets, provider
 * tokens), and patterns for well-known credential shapes (GitHub tokens, Google OAuth tokens and
 * API keys, JWTs, PEM private keys, `Bearer …`). Anything matched becomes `[REDACTED]`.
 */

/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

const knownSecrets = new Set<string>();

/**
 * The registered secrets as one multi-pattern scanner (Rabin–Karp): every secret is indexed by a
 * rolling hash of its first `width` UTF-16 code units (`width` = the shortest secret's length), so
 * a string is scanned once, in O(its length), whatever the number of secrets. A regular expression
 * alternating 1 000 group secrets cost ~100 µs per string; this costs well under 1 µs.
 *
 * It finds what `new RegExp(secrets sorted longest first, escaped, joined by '|', 'g')` would
 * replace: at each position from the left, the first secret in that order that starts there;
 * the scan then resumes after it.
 */
interface SecretScanner {
  /** Length of the hashed prefix: the shortest secret's length (at least 8). */
  width: number;
  /** `HASH_BASE^(width-1)` modulo 2^32, to roll the oldest unit out. */
  baseToWidth: number;
  /** Bloom-like pre-check: bit `h & FILTER_MASK` is set when some secret's prefix hashes to `h`. */
  filter: Uint32Array;
  /** Prefix hash → the secrets with that prefix hash, longest first (ties: registration order). */
  byHash: Map<number, string[]>;
}
const HASH_BASE = 0x01000193;
const FILTER_BITS = 1 << 16;
const FILTER_MASK = FILTER_BITS - 1;
/** Built on first use after a registration (so registering 1 000 group secrets at start-up stays linear). */
let scanner: SecretScanner | null = null;
let scannerStale = false;

/** Hash of `s[from, from + width)` (32-bit, wrapping), the same function the scan rolls. */
function prefixHash(s: string, from: number, width: number): number {
  let h = 0;
  for (let i = from; i < from + width; i++) h = (Math.imul(h, HASH_BASE) + s.charCodeAt(i)) | 0;
  return h;
}

function buildScanner(secrets: Iterable<string>): SecretScanner {
  const ordered = [...secrets].sort((a, b) => b.length - a.length); // stable: ties keep registration order
  const width = ordered[ordered.length - 1]!.length;
  let baseToWidth = 1;
  for (let i = 1; i < width; i++) baseToWidth = Math.imul(baseToWidth, HASH_BASE);
  const filter = new Uint32Array(FILTER_BITS / 32);
  const byHash = new Map<number, string[]>();
  for (const secret of ordered) {
    const h = prefixHash(secret, 0, width);
    filter[(h & FILTER_MASK) >>> 5]! |= 1 << (h & 31);
    const list = byHash.get(h);
    if (list) list.push(secret);
    else byHash.set(h, [secret]);
  }
  return { width, baseToWidth, filter, byHash };
}

/** Replaces every registered secret in `input` with {@link REDACTED} (see {@link SecretScanner}). */
function redactKnownSecrets(input: string, sc: SecretScanner): string {
  const { width, baseToWidth, filter, byHash } = sc;
  const n = input.length;
  if (n < width) return input;
  let out = '';
  let copied = 0;
  let i = 0;
  let h = prefixHash(input, 0, width);
  while (i + width <= n) {
    if ((filter[(h & FILTER_MASK) >>> 5]! & (1 << (h & 31))) !== 0) {
      const found = byHash.get(h)?.find((secret) => input.startsWith(secret, i));
      if (found !== undefined) {
        out += input.slice(copied, i) + REDACTED;
        i += found.length;
        copied = i;
        if (i + width <= n) h = prefixHash(input, i, width);
        continue;
      }
    }
    if (i + width < n) h = (Math.imul((h - Math.imul(input.charCodeAt(i), baseToWidth)) | 0, HASH_BASE) + input.charCodeAt(i + width)) | 0;
    i += 1;
  }
  return copied === 0 ? input : out + input.slice(copied);
}

const TOKEN_PATTERNS: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}\b/g,
  /\bv1\.[0-9a-f]{40}\b/g,
  /\bya29\.[A-Za-z0-9_\-.]{10,}/g,
  /\bAIza[0-9A-Za-z_-]{35}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
  /\b(?:xox[abposr]|sk_live|sk_test|rk_live)[-_][A-Za-z0-9-_]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /(\b[Bb]earer\s+)[A-Za-z0-9\-._~+/]{16,}=*/g,
  /((?:token|secret|password|passwd|api[_-]?key|private[_-]?key)["']?\s*[:=]\s*["']?)[^\s"',;]{8,}/gi,
];
/** Cheap pre-check: a string none of the patterns could match is returned untouched. */
const MAYBE_TOKEN = /PRIVATE KEY|gh[pousr]_|github_pat_|v1\.|ya29\.|AIza|eyJ|xox|sk_|rk_|AKIA|bearer|token|secret|passw|api.?key|private.?key/i;

/**
 * Registers an exact secret value so that every later redaction removes it. Values shorter than
 * 8 characters are ignored (they would redact ordinary words). Idempotent.
 */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 8 || knownSecrets.has(value)) return;
  knownSecrets.add(value);
  scannerStale = true;
}

/** Redacts secrets from one string: registered values first, then known credential shapes. */
export function redactString(input: string): string {
  let out = input;
  if (scannerStale) {
    scanner = buildScanner(knownSecrets);
    scannerStale = false;
  }
  if (scanner !== null) out = redactKnownSecrets(out, scanner);
  if (!MAYBE_TOKEN.test(out)) return out;
  for (const re of TOKEN_PATTERNS) {
    re.lastIndex = 0;
    if (!re.test(out)) continue;
    re.lastIndex = 0;
    out = out.replace(re, (match, prefix?: string) =>
      typeof prefix === 'string' && match.startsWith(prefix) ? `${prefix}${REDACTED}` : REDACTED,
    );
  }
  return out;
}

/**
 * Deep-copies a JSON-like value with every string redacted (keys kept). Values under keys that
 * name a credential (`authorization`, `token`, `secret`, `password`, `private_key`, …) are replaced
 * whole. Non-JSON leaves (functions, symbols) are dropped; Dates become ISO strings.
 */
export function redact<T>(value: T): T {
  return redactValue(value, 0) as T;
}

const SECRET_KEY = /^(authorization|cookie|set-cookie|x-api-key|token|access_token|refresh_token|id_token|secret|client_secret|password|passwd|private_key|privatekey|api_key|apikey)$/i;

function redactValue(value: unknown, depth: number): unknown {
  if (depth > 64) return REDACTED;
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out[k] = SECRET_KEY.test(k) && v !== null && typeof v !== 'boolean' ? REDACTED : redactValue(v, depth + 1);
    }
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}
