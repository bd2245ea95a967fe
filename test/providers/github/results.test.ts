/**
 * Result capping and redaction of GitHub results.
 */
import { describe, expect, it } from 'vitest';
import { capResult, clipBody, MAX_RESULT_BODY } from '../../../providers/github/results.js';

const size = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

describe('capResult', () => {
  it('leaves a small result alone (no truncated flag added)', () => {
    const r = { items: [{ n: 1 }], truncated: false };
    expect(capResult(r, 1024)).toEqual(r);
  });

  it('drops list items from the end until the result fits, and marks it truncated', () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ number: i, title: `issue ${i} ${'x'.repeat(40)}` }));
    const out = capResult({ items, truncated: false }, 2048);
    expect(size(out)).toBeLessThanOrEqual(2048);
    expect(out.truncated).toBe(true);
    expect(out.items.length).toBeGreaterThan(10);
    expect(out.items).toEqual(items.slice(0, out.items.length));
  });

  it('shortens the longest strings (file content) when dropping items is not enough', () => {
    const content = 'é'.repeat(100_000);
    const out = capResult({ type: 'file', path: 'a', content, truncated: false }, 64 * 1024);
    expect(size(out)).toBeLessThanOrEqual(64 * 1024);
    expect(out.truncated).toBe(true);
    expect(out.content.endsWith('…[truncated]')).toBe(true);
    expect(out.content.length).toBeGreaterThan(10_000);
  });

  it('redacts credentials anywhere in the result', () => {
    const out = capResult({ content: 'GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ0123', items: [{ body: 'Bearer abcdefghijklmnopqrstuvwxyz' }] }, 64 * 1024);
    expect(JSON.stringify(out)).not.toMatch(/ghp_|abcdefghijklmnop/);
  });
});

describe('clipBody', () => {
  it('keeps short bodies and null, clips long ones', () => {
    expect(clipBody(null)).toBeNull();
    expect(clipBody('hi')).toBe('hi');
    const long = clipBody('x'.repeat(MAX_RESULT_BODY * 2))!;
    expect(long.length).toBe(MAX_RESULT_BODY);
    expect(long.endsWith('…[truncated]')).toBe(true);
  });
});
