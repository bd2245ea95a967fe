import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/platform/audit/canonical.js';

/** Values an audit row's detail and columns hold, and the edges where the fast path must defer to the library. */
const VALUES: unknown[] = [
  '',
  'call:call000:e-1',
  'signature:pass request:pass claim:pass',
  'quote " backslash \\ newline \n tab \t nul \u0000 del \u007f',
  'é ü 日本 \u2028 \u2029',
  '😀 paired surrogates',
  0,
  -0,
  1,
  -17,
  1.5,
  1e21,
  1e-7,
  Number.MAX_SAFE_INTEGER,
  true,
  false,
  null,
  {},
  { b: 1, a: 'x', c: null, d: true },
  { action: 'bench.noop', resource: 'bench:noop', summary: 's', task_id: null, grant_id: 'g_1', steps: 'signature:pass' },
  { '10': 1, '9': 2, b: 3, B: 4, é: 5, e: 6, '': 7, '😀': 8, 'ﬀ': 9 },
  { skip: undefined, sym: Symbol('x'), kept: 1 },
  { nested: { z: 1, a: [1, 'two', null, { y: 2, x: 1 }] }, top: 'x' },
  [3, 'a', null, { b: 1, a: 2 }],
  { date: new Date(0) },
  { f: 0.1 + 0.2, big: 123456789012345680000, small: 5e-324 },
];

/** Values without a canonical form: the library throws, and so must the fast path. */
const INVALID: unknown[] = [Number.NaN, Number.POSITIVE_INFINITY, '\uD800', 'a\uDC00b', { x: Number.NaN }, { x: 'lone \uDBFF' }, { ['\uD800']: 1 }];

describe('canonicalJson (the audit trail canonical JSON, RFC 8785)', () => {
  it('returns exactly what the canonicalize library returns', () => {
    for (const v of VALUES) expect(canonicalJson(v), JSON.stringify(String(v))).toBe(canonicalize(v));
  });

  it('matches the library on generated flat details', () => {
    const pick = (n: number) => ['a', 'Z', 'é', '"', '\\', '\n', '😀', '0', ' ', '\u001f'][n % 10]!;
    for (let i = 0; i < 500; i++) {
      const o: Record<string, unknown> = {};
      for (let j = 0; j < (i % 7); j++) {
        const key = pick(i * 7 + j) + pick(i + j * 3) + String(j);
        o[key] = [pick(i + j).repeat(j), i * j - 50, (i + j) % 2 === 0, null, i / 7][j % 5];
      }
      expect(canonicalJson(o)).toBe(canonicalize(o));
    }
  });

  it('throws where the library throws', () => {
    for (const v of INVALID) {
      expect(() => canonicalize(v)).toThrow();
      expect(() => canonicalJson(v)).toThrow();
    }
  });
});
