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
/** One alternation of every registered secret, longest first; rebuilt when one is added. */
let knownSecretsRe: RegExp | null = null;

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
  const alternatives = [...knownSecrets].sort((a, b) => b.length - a.length).map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  knownSecretsRe = new RegExp(alternatives.join('|'), 'g');
}

/** Redacts secrets from one string: registered values first, then known credential shapes. */
export function redactString(input: string): string {
  let out = input;
  if (knownSecretsRe !== null && out.length >= 8) {
    knownSecretsRe.lastIndex = 0;
    out = out.replace(knownSecretsRe, REDACTED);
  }
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
