/**
 * Secret detection shared by redaction (the audit trail, the logs, provider results) and input
 * validation (requests that carry a secret are refused, see `refuseSecrets` in src/platform/http/validate.ts).
 *
 * Two layers: exact values registered at run time (the master key, every live group secret, the
 * token-signing key, provider credentials), and patterns for well-known credential shapes (GitHub
 * tokens, Google OAuth tokens and API keys, JWTs, PEM private keys, `Bearer …`). Redaction turns
 * anything matched into `[REDACTED]`; {@link findSecret} names what it matched.
 */

import AhoCorasick from 'modern-ahocorasick';

/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

const knownSecrets = new Set<string>();

/**
 * Strings {@link redactString} found clean (returned unchanged) since the last registration: the
 * audit rows of calls repeat the same action ids, resources, grant ids and receipt step lines, so
 * each is scanned once rather than once per row. Redaction is a pure function of the string, the
 * fixed credential shapes and the registered secrets, and secrets are only ever added (which
 * clears the set), so a string found here is clean now. Only clean strings are kept (never one
 * that held a secret), at most {@link CLEAN_MAX} of at most {@link CLEAN_MAX_LENGTH} code units
 * (the set is emptied when full).
 */
const cleanStrings = new Set<string>();
const CLEAN_MAX = 4096;
const CLEAN_MAX_LENGTH = 512;

/**
 * The registered secrets as one Aho–Corasick automaton (`modern-ahocorasick`): a string is scanned
 * once, in O(its length), whatever the number of secrets (about 25 ns per character; building the
 * automaton over 1 300 secrets takes about 7 ms, once after each registration).
 *
 * The library compares whole grapheme clusters, so on its own it would miss a secret whose last
 * character a combining mark, a zero-width joiner or a variation selector joins to what follows,
 * or whose first character a prepended mark (U+0600…) joins to what precedes: a way to slip a
 * secret past redaction. So the secrets and the text are both matched in their {@link scanForm},
 * where every code unit is a grapheme cluster of its own: ASCII except CR is kept, every other
 * code unit becomes NUL (a control character, never joined to a neighbour). The scan form has the
 * same length, so offsets are the text's, and every occurrence of a secret in the text is an
 * occurrence of its scan form in the text's. The converse can fail (two different code units both
 * become NUL), so every hit is checked against the original text.
 *
 * It finds what `new RegExp(secrets sorted longest first, escaped, joined by '|', 'g')` would
 * replace: at each position from the left, the longest secret that starts there; the scan then
 * resumes after it.
 */
interface SecretScanner {
  matcher: AhoCorasick;
  /** The registered secrets, by the matcher's pattern index. */
  secrets: readonly string[];
}
/** The code units a scan form replaces with NUL: all but ASCII without CR (those may join a neighbouring grapheme cluster). */
const NOT_OWN_GRAPHEME = /[^\x00-\x0c\x0e-\x7f]/g;
/** Built on first use after a registration (so registering 1 000 group secrets at start-up stays linear). */
let scanner: SecretScanner | null = null;
let scannerStale = false;

/** `s` with every code unit that may join a neighbouring grapheme replaced by NUL (same length). */
function scanForm(s: string): string {
  NOT_OWN_GRAPHEME.lastIndex = 0;
  if (!NOT_OWN_GRAPHEME.test(s)) return s;
  return s.replace(NOT_OWN_GRAPHEME, '\0');
}

function buildScanner(secrets: Iterable<string>): SecretScanner {
  const list = [...secrets];
  return { matcher: new AhoCorasick(list.map(scanForm)), secrets: list };
}

/**
 * The registered secrets in `input`, leftmost first and, at one position, the longest, each
 * scan resuming after the previous secret (see {@link SecretScanner}): start index and length in
 * UTF-16 code units.
 */
function knownSecretsIn(input: string, sc: SecretScanner): { index: number; length: number }[] {
  const form = scanForm(input);
  if (!sc.matcher.match(form)) return [];
  const hits: { index: number; length: number }[] = [];
  for (const m of sc.matcher.iterate(form)) {
    if (input.startsWith(sc.secrets[m.patternIndex]!, m.start)) hits.push({ index: m.start, length: m.end - m.start });
  }
  hits.sort((a, b) => a.index - b.index || b.length - a.length);
  const chosen: { index: number; length: number }[] = [];
  let resume = 0;
  for (const hit of hits) {
    if (hit.index < resume) continue;
    chosen.push(hit);
    resume = hit.index + hit.length;
  }
  return chosen;
}

/** Whether `input` holds a registered secret (see {@link SecretScanner}). */
function hasKnownSecret(input: string, sc: SecretScanner): boolean {
  const form = scanForm(input);
  if (!sc.matcher.match(form)) return false;
  for (const m of sc.matcher.iterate(form)) if (input.startsWith(sc.secrets[m.patternIndex]!, m.start)) return true;
  return false;
}

/** Replaces every registered secret in `input` with {@link REDACTED}, scanning left to right. */
function redactKnownSecrets(input: string, sc: SecretScanner): string {
  const hits = knownSecretsIn(input, sc);
  if (hits.length === 0) return input;
  let out = '';
  let copied = 0;
  for (const m of hits) {
    out += input.slice(copied, m.index) + REDACTED;
    copied = m.index + m.length;
  }
  return out + input.slice(copied);
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
  cleanStrings.clear(); // a string clean before may hold the new secret
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
  return sc !== null && hasKnownSecret(text, sc) ? 'broker_secret' : null;
}

/** True when {@link findSecret} finds any secret in `text`. */
export function containsSecret(text: string): boolean {
  return findSecret(text) !== null;
}

const NO_KINDS: ReadonlySet<SecretKind> = new Set();

/** Redacts secrets from one string: registered values first, then known credential shapes. */
export function redactString(input: string): string {
  const memo = input.length <= CLEAN_MAX_LENGTH;
  if (memo && cleanStrings.has(input)) return input;
  const out = scanAndRedact(input);
  if (memo && out === input) {
    if (cleanStrings.size >= CLEAN_MAX) cleanStrings.clear();
    cleanStrings.add(input);
  }
  return out;
}

/** {@link redactString} without the set of clean strings. */
function scanAndRedact(input: string): string {
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
