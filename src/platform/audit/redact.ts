/**
 * Secret detection shared by redaction (the audit trail, the logs, provider results) and input
 * validation (requests that carry a secret are refused, see `refuseSecrets` in src/platform/http/validate.ts).
 *
 * Two layers: exact values registered at run time (the master key, every live group secret, the
 * token-signing key, provider credentials), and patterns for well-known credential shapes (GitHub
 * tokens, Google OAuth tokens and API keys, JWTs, PEM private keys, `Bearer …`). Redaction turns
 * anything matched into `[REDACTED]`; {@link findSecret} names what it matched.
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

/**
 * The first registered secret in `input` at or after `from` (see {@link SecretScanner}): its start
 * index and length (UTF-16 code units), or null when there is none.
 */
function nextKnownSecret(input: string, sc: SecretScanner, from: number): { index: number; length: number } | null {
  const { width, baseToWidth, filter, byHash } = sc;
  const n = input.length;
  let i = from;
  if (i + width > n) return null;
  let h = prefixHash(input, i, width);
  for (;;) {
    if ((filter[(h & FILTER_MASK) >>> 5]! & (1 << (h & 31))) !== 0) {
      const found = byHash.get(h)?.find((secret) => input.startsWith(secret, i));
      if (found !== undefined) return { index: i, length: found.length };
    }
    if (i + width >= n) return null;
    h = (Math.imul((h - Math.imul(input.charCodeAt(i), baseToWidth)) | 0, HASH_BASE) + input.charCodeAt(i + width)) | 0;
    i += 1;
  }
}

/** Replaces every registered secret in `input` with {@link REDACTED}, scanning left to right. */
function redactKnownSecrets(input: string, sc: SecretScanner): string {
  let out = '';
  let copied = 0;
  for (let m = nextKnownSecret(input, sc, 0); m !== null; m = nextKnownSecret(input, sc, copied)) {
    out += input.slice(copied, m.index) + REDACTED;
    copied = m.index + m.length;
  }
  return copied === 0 ? input : out + input.slice(copied);
}

/** The scanner over the registered secrets as they are now (rebuilt after a registration); null when none. */
function currentScanner(): SecretScanner | null {
  if (scannerStale) {
    scanner = buildScanner(knownSecrets);
    scannerStale = false;
  }
  return scanner;
}

/**
 * What a detector found, named without the value:
 * - `broker_secret`: a value registered with {@link registerSecret} (the master key, a group
 *   secret in any version still live or about to be, the token-signing key, a provider credential
 *   the host holds);
 * - `private_key`: a PEM private key block;
 * - `github_token`: `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`, `github_pat_` or a `v1.` installation token;
 * - `google_oauth_token` (`ya29.`), `google_api_key` (`AIza`);
 * - `jwt`: a JWS/JWT in compact form (bearer tokens among them);
 * - `api_token`: Slack (`xox?-`) and Stripe (`sk_live_`, `sk_test_`, `rk_live_`) keys;
 * - `aws_access_key` (`AKIA`);
 * - `bearer_token`: `Bearer <credential>`;
 * - `credential_assignment`: `token=…`, `password: …`, `api_key=…` and the like.
 */
export type SecretKind =
  | 'broker_secret'
  | 'private_key'
  | 'github_token'
  | 'google_oauth_token'
  | 'google_api_key'
  | 'jwt'
  | 'api_token'
  | 'aws_access_key'
  | 'bearer_token'
  | 'credential_assignment';

/** The credential shapes, in the order redaction applies them. A pattern's group 1, if any, is kept. */
const TOKEN_PATTERNS: readonly { kind: SecretKind; re: RegExp }[] = [
  { kind: 'private_key', re: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g },
  { kind: 'github_token', re: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}\b/g },
  { kind: 'github_token', re: /\bgithub_pat_[A-Za-z0-9_]{20,}\b/g },
  { kind: 'github_token', re: /\bv1\.[0-9a-f]{40}\b/g },
  { kind: 'google_oauth_token', re: /\bya29\.[A-Za-z0-9_\-.]{10,}/g },
  { kind: 'google_api_key', re: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { kind: 'jwt', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  { kind: 'api_token', re: /\b(?:xox[abposr]|sk_live|sk_test|rk_live)[-_][A-Za-z0-9-_]{10,}/g },
  { kind: 'aws_access_key', re: /\bAKIA[0-9A-Z]{16}\b/g },
  { kind: 'bearer_token', re: /(\b[Bb]earer\s+)[A-Za-z0-9\-._~+/]{16,}=*/g },
  { kind: 'credential_assignment', re: /((?:token|secret|password|passwd|api[_-]?key|private[_-]?key)["']?\s*[:=]\s*["']?)[^\s"',;]{8,}/gi },
];
/** Cheap pre-check: a string none of the patterns could match is returned untouched. */
const MAYBE_TOKEN = /PRIVATE KEY|gh[pousr]_|github_pat_|v1\.|ya29\.|AIza|eyJ|xox|sk_|rk_|AKIA|bearer|token|secret|passw|api.?key|private.?key/i;

/**
 * Registers an exact secret value so that every later redaction removes it and {@link findSecret}
 * reports it as `broker_secret`. Values shorter than 8 characters are ignored (they would redact
 * ordinary words). Idempotent; a value stays registered for the life of the process.
 */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 8 || knownSecrets.has(value)) return;
  knownSecrets.add(value);
  scannerStale = true;
}

/**
 * Registers raw secret bytes (a key) in each text form it is likely to be written in: base64url
 * (how `.ipc_secret` holds a group secret), base64 without its `=` padding (matched wherever the
 * padded form is), and lowercase hex. See {@link registerSecret}.
 */
export function registerSecretBytes(bytes: Uint8Array): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  registerSecret(buf.toString('base64url'));
  registerSecret(buf.toString('base64').replace(/=+$/, ''));
  registerSecret(buf.toString('hex'));
}

/**
 * The kind of the first secret found in `text`, or null when it holds none. It runs the detectors
 * redaction runs ({@link redactString}): the credential shapes first (so a registered GitHub token
 * is named `github_token`), then the registered values (`broker_secret`). The value itself is
 * never returned, so the answer can be shown to whoever sent the text.
 * @param allow kinds to pass over (e.g. `jwt` for a field that carries a signature by design);
 *   registered values are never passed over.
 */
export function findSecret(text: string, allow: ReadonlySet<SecretKind> = NO_KINDS): SecretKind | null {
  if (MAYBE_TOKEN.test(text)) {
    for (const { kind, re } of TOKEN_PATTERNS) {
      if (allow.has(kind)) continue;
      re.lastIndex = 0;
      const hit = re.test(text);
      re.lastIndex = 0;
      if (hit) return kind;
    }
  }
  const sc = currentScanner();
  return sc !== null && nextKnownSecret(text, sc, 0) !== null ? 'broker_secret' : null;
}

/** True when {@link findSecret} finds any secret in `text`. */
export function containsSecret(text: string): boolean {
  return findSecret(text) !== null;
}

const NO_KINDS: ReadonlySet<SecretKind> = new Set();

/** Redacts secrets from one string: registered values first, then known credential shapes. */
export function redactString(input: string): string {
  let out = input;
  const sc = currentScanner();
  if (sc !== null) out = redactKnownSecrets(out, sc);
  if (!MAYBE_TOKEN.test(out)) return out;
  for (const { re } of TOKEN_PATTERNS) {
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
