/**
 * Grant patterns: an action id or a resource, matched exactly, or by prefix when the pattern
 * ends in `*` (`github.get_*`, `acme/*`; a lone `*` matches everything).
 * Matching is case-sensitive: a pattern never matches more than it spells out.
 */

/** True when `value` matches `pattern` (exact, or prefix before a trailing `*`). */
export function matchesPattern(pattern: string, value: string): boolean {
  const last = pattern.length - 1;
  if (last < 0 || pattern.charCodeAt(last) !== 42 /* * */) return pattern === value;
  if (value.length < last) return false;
  for (let i = 0; i < last; i++) if (pattern.charCodeAt(i) !== value.charCodeAt(i)) return false; // no substring allocated
  return true;
}

/** The first pattern of `patterns` that matches `value`, or null. */
export function firstMatch(patterns: readonly string[], value: string): string | null {
  for (const p of patterns) if (matchesPattern(p, value)) return p;
  return null;
}
