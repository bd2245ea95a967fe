/**
 * Caller filters and the filter the broker sends. The broker composes the final
 * Logging-query-language filter itself:
 *
 *     (<caller filter>) AND timestamp >= "<start>" AND timestamp < "<end>"
 *
 * A caller filter must not be able to escape the parentheses or cancel the time bounds, so it is
 * checked lexically before it is wrapped ({@link filterProblem}); anything that could change how
 * the wrapped text parses is refused rather than rewritten:
 * - parentheses outside double-quoted strings must balance, and never close one the filter did not
 *   open (`a) OR (b` is refused);
 * - every double-quoted string must be closed (a backslash escapes the next character inside one);
 * - outside double-quoted strings: no `--` (it starts a comment that would swallow the closing
 *   parenthesis and the bounds), no backslash and no single quote (so no other quoting can hide a
 *   parenthesis from this check), no control characters other than tab, CR and LF.
 * Time bounds in the caller's own filter can only narrow the range, since they sit inside the AND.
 */

/** The Logging API's limit is 20,000 characters; this leaves room for the bounds. */
export const MAX_FILTER_CHARS = 19_000;

/**
 * Why `filter` cannot be wrapped safely, as a sentence; null when it can.
 * Pure and linear in the filter's length.
 */
export function filterProblem(filter: string): string | null {
  let depth = 0;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i]!;
    if (ch === '"') {
      const close = closingQuote(filter, i);
      if (close < 0) return `the double-quoted string at offset ${i} is not closed`;
      i = close;
    } else if (ch === '(') {
      depth += 1;
    } else if (ch === ')') {
      depth -= 1;
      if (depth < 0) return `the ")" at offset ${i} closes a parenthesis the filter did not open`;
    } else if (ch === '-' && filter[i + 1] === '-') {
      return `"--" at offset ${i} starts a comment; comments are not accepted`;
    } else if (ch === '\\') {
      return `the backslash at offset ${i} is outside a double-quoted string`;
    } else if (ch === "'") {
      return `the single quote at offset ${i} is not accepted; quote strings with double quotes`;
    } else if (ch < ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') {
      return `the control character at offset ${i} is not accepted`;
    }
  }
  return depth > 0 ? `${depth} "(" ${depth === 1 ? 'is' : 'are'} not closed` : null;
}

/** Index of the quote closing the string opened at `open`, or -1. */
function closingQuote(s: string, open: number): number {
  for (let i = open + 1; i < s.length; i++) {
    if (s[i] === '\\') i += 1;
    else if (s[i] === '"') return i;
  }
  return -1;
}

/**
 * The filter sent to Cloud Logging: the caller's filter verbatim in parentheses, AND the enforced
 * half-open time range `[startMs, endMs)` as RFC 3339 UTC. A blank caller filter gives the bounds
 * alone. The caller filter must already have passed {@link filterProblem}.
 * @param startMs inclusive lower bound, Unix ms.
 * @param endMs exclusive upper bound, Unix ms.
 */
export function composeFilter(filter: string, startMs: number, endMs: number): string {
  const bounds = `timestamp >= "${new Date(startMs).toISOString()}" AND timestamp < "${new Date(endMs).toISOString()}"`;
  return filter.trim() === '' ? bounds : `(${filter}) AND ${bounds}`;
}
