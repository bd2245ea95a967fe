/**
 * The registered secrets' scanner (`registerSecret`, `redactString`, `findSecret`): it redacts what
 * `new RegExp(secrets sorted longest first, escaped, joined by '|', 'g')` replaces (at each
 * position from the left the longest secret that starts there, the scan resuming after it), in
 * UTF-16 code units, whatever characters surround a secret: a combining mark, a zero-width joiner,
 * a variation selector or a prepended mark next to a secret must not hide it (a grapheme-cluster
 * matcher alone would miss it there).
 *
 * The secrets registered here live in this test file's module instance only.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { containsSecret, findSecret, redact, REDACTED, redactString, registerSecret, registerSecretBytes } from '../../src/platform/audit/redact.js';

/** Secret-shaped values no credential pattern knows: lowercase letters and digits only. */
const A = 'qzxv7wk2m4np'; // 12
const B = 'm4np9rt5s8'; // 10: overlaps the end of A ("m4np")
const C = 'hjy3kd6lfa'; // 10
const D = 'hjy3kd6lfa0bc1'; // 14: C is its prefix
const E = 'tuq8ve2wyx'; // 10
/** One with characters outside ASCII. */
const U = 'pässwörd-ünï-7x';
for (const s of [A, B, C, D, E, U]) registerSecret(s);

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The definition: one regular expression over every registered secret, longest first. */
function reference(text: string, secrets: readonly string[]): string {
  const re = new RegExp([...secrets].sort((x, y) => y.length - x.length).map(escape).join('|'), 'g');
  return text.replace(re, REDACTED);
}

describe('registered secrets', () => {
  it('overlapping secrets: the leftmost wins and the scan resumes after it', () => {
    expect(redactString(`xx${A}9rt5s8yy`)).toBe(`xx${REDACTED}9rt5s8yy`);
    expect(redactString(`xx${B}yy`)).toBe(`xx${REDACTED}yy`);
    // B starts inside A: A is found first, so B's tail is left as text (what the regex does)…
    expect(redactString(`${A}9rt5s8${B}`)).toBe(`${REDACTED}9rt5s8${REDACTED}`);
    // …and a text with A's start but not the whole of A gives B.
    expect(redactString(`${A.slice(0, 4)}${B}`)).toBe(`${A.slice(0, 4)}${REDACTED}`);
  });

  it('at one position the longest secret wins, whichever was registered first', () => {
    expect(redactString(`<${D}>`)).toBe(`<${REDACTED}>`);
    expect(redactString(`<${C}>`)).toBe(`<${REDACTED}>`);
    expect(redactString(`<${C}0b>`)).toBe(`<${REDACTED}0b>`);
  });

  it('adjacent and repeated secrets are each redacted', () => {
    expect(redactString(`${C}${E}${C}`)).toBe(REDACTED.repeat(3));
    expect(redactString(`${E} ${E}\n${E}`)).toBe(`${REDACTED} ${REDACTED}\n${REDACTED}`);
  });

  it('a secret glued to a combining mark, a joiner, a variation selector or a prepended mark is still found', () => {
    const around: [string, string][] = [
      ['', '\u0301'], // combining acute accent after
      ['', '\u200d'], // zero-width joiner after
      ['', '\ufe0f'], // variation selector after
      ['x', '\u{1f3fb}'], // emoji skin-tone modifier after
      ['\u0600', ''], // Arabic number sign (prepended) before
      ['\u0915\u094d', ''], // Devanagari virama before
      ['\r\n', '\r\n'],
      ['\r', '\n'],
      ['\ud800', '\udc00'], // lone surrogates on both sides
      ['😀', '👍🏽'],
    ];
    for (const [before, after] of around) {
      const text = `${before}${E}${after}`;
      expect(redactString(text), JSON.stringify(text)).toBe(`${before}${REDACTED}${after}`);
      expect(findSecret(text), JSON.stringify(text)).toBe('broker_secret');
      expect(containsSecret(text)).toBe(true);
    }
  });

  it('a secret with characters outside ASCII is matched exactly, code unit by code unit', () => {
    expect(redactString(`a ${U} b`)).toBe(`a ${REDACTED} b`);
    expect(redactString(`${U}\u0301`)).toBe(`${REDACTED}\u0301`);
    // The same shape with other accents is another value.
    const lookalike = 'pæsswørd-ùnî-7x';
    expect(redactString(lookalike)).toBe(lookalike);
    expect(findSecret(lookalike)).toBeNull();
    expect(findSecret(`${U.normalize('NFD')}`)).toBeNull(); // another code unit sequence
  });

  it('registerSecretBytes registers base64url, unpadded base64 and hex', () => {
    const bytes = Buffer.from('fb'.repeat(31) + 'ff', 'hex'); // base64 and base64url differ (+/ vs -_)
    registerSecretBytes(bytes);
    for (const form of [bytes.toString('base64url'), bytes.toString('base64'), bytes.toString('hex')]) {
      expect(redactString(`k=${form};`)).toMatch(new RegExp(`^k=${escape(REDACTED)}=*;$`));
      expect(findSecret(form)).toBe('broker_secret');
    }
  });

  it('gives what the regular expression over every secret gives, on random text built from fragments of them', () => {
    const extra = Array.from({ length: 40 }, (_, i) => createHash('sha256').update(`extra-${i}`).digest('base64url').slice(0, 8 + (i % 9)));
    for (const s of extra) registerSecret(s);
    const secrets = [A, B, C, D, E, U, ...extra];
    const pieces = [...secrets, ...secrets.map((s) => s.slice(0, 5)), ...secrets.map((s) => s.slice(3)), ' ', 'é', '\u0301', '\u200d', '\r', '\n', '😀', 'a', '\u0600'];
    let seed = 7;
    const pick = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      let text = '';
      for (let j = pick(12); j >= 0; j--) text += pieces[pick(pieces.length)];
      const want = reference(text, secrets);
      expect(redactString(text), JSON.stringify(text)).toBe(want);
      expect(findSecret(text) === 'broker_secret', JSON.stringify(text)).toBe(want !== text);
    }
  });

  it('ignores values shorter than 8 characters and text without any secret', () => {
    registerSecret('short7x');
    expect(redactString('a short7x b')).toBe('a short7x b');
    expect(findSecret('plain text, nothing to see')).toBeNull();
    expect(redactString('')).toBe('');
  });
});

describe('redactString after a registration', () => {
  it('redacts a string it found clean before, once the secret it holds is registered', () => {
    const secret = `late-secret-${Math.random().toString(36).slice(2)}`;
    const text = `the step line that repeats ${secret} in every row`;
    expect(redactString(text)).toBe(text);
    expect(redactString(text)).toBe(text); // found clean twice
    registerSecret(secret);
    expect(redactString(text)).toBe('the step line that repeats [REDACTED] in every row');
    expect(redact({ steps: text })).toEqual({ steps: 'the step line that repeats [REDACTED] in every row' });
  });
});
