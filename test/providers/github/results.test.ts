/**
 * Result capping and redaction of GitHub results.
 */
import { describe, expect, it } from 'vitest';
import { capResult, clipBody, decodeUtf8, fitString, MAX_RESULT_BODY, readPrefix } from '../../../src/providers/github/results.js';

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

/** A web stream of `count` chunks of `size` bytes (byte `i` of the stream is `i % 251`) that counts its pulls. */
function countingStream(count: number, size: number) {
  const seen = { pulls: 0, cancelled: false };
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      seen.pulls += 1;
      controller.enqueue(Uint8Array.from({ length: size }, (_, i) => (offset + i) % 251));
      offset += size;
      if (seen.pulls === count) controller.close();
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { stream, seen };
}

describe('readPrefix', () => {
  it('stops pulling once past the limit and cancels: 1 000 chunks of 64 KiB, a 64 KiB limit, about two pulled', async () => {
    const { stream, seen } = countingStream(1000, 64 * 1024);
    const front = await readPrefix(stream, 64 * 1024);
    expect(front.complete).toBe(false);
    expect(front.bytes.length).toBe(64 * 1024);
    expect(front.bytesRead).toBe(2 * 64 * 1024);
    expect(seen.pulls).toBeLessThanOrEqual(3); // the two read, and at most one queued ahead by the stream itself
    expect(seen.cancelled).toBe(true);
    expect(front.bytes.every((b, i) => b === i % 251)).toBe(true);
    expect(stream.locked).toBe(false);
  });

  it('cuts inside a chunk at exactly the limit', async () => {
    const { stream, seen } = countingStream(100, 1000);
    const front = await readPrefix(stream, 2500);
    expect(front).toMatchObject({ complete: false, bytesRead: 3000 });
    expect(front.bytes.length).toBe(2500);
    expect(front.bytes.every((b, i) => b === i % 251)).toBe(true);
    expect(seen.cancelled).toBe(true);
  });

  it('reads a stream that ends within the limit whole, including one of exactly the limit', async () => {
    for (const limit of [3000, 5000]) {
      const { stream, seen } = countingStream(3, 1000);
      const front = await readPrefix(stream, limit);
      expect(front).toMatchObject({ complete: true, bytesRead: 3000 });
      expect(front.bytes.length).toBe(3000);
      expect(seen.cancelled).toBe(false);
    }
  });

  it('passes on a read failure and releases the stream', async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error('connection reset'));
      },
    });
    await expect(readPrefix(stream, 10)).rejects.toThrow('connection reset');
    expect(stream.locked).toBe(false);
  });
});

describe('decodeUtf8', () => {
  const euros = Buffer.from('€€€', 'utf8'); // 9 bytes, 3 per character

  it('drops a character the cut split, but only when told the bytes were cut', () => {
    expect(decodeUtf8(euros.subarray(0, 7), true)).toBe('€€');
    expect(decodeUtf8(euros.subarray(0, 8), true)).toBe('€€');
    expect(decodeUtf8(euros.subarray(0, 6), true)).toBe('€€');
    expect(decodeUtf8(euros.subarray(0, 7), false)).toBeNull();
    expect(decodeUtf8(Buffer.from('a𝄞', 'utf8').subarray(0, 4), true)).toBe('a');
  });

  it('answers null for bytes that are not UTF-8 anywhere, cut or not', () => {
    const binary = Uint8Array.from([0x61, 0xff, 0xfe, 0x62]);
    expect(decodeUtf8(binary, false)).toBeNull();
    expect(decodeUtf8(binary, true)).toBeNull();
    expect(decodeUtf8(Uint8Array.from([0x61, 0xc3]), true)).toBe('a'); // a lone lead byte at the end may be a cut
  });
});

describe('fitString', () => {
  const file = (content: string, truncated = false) => ({ type: 'file', content, truncated });

  it('leaves a value that fits alone', () => {
    const v = file('hello');
    expect(fitString(v, 'content', 1024)).toBe(v);
  });

  it('keeps the longest clean prefix that fits, never splitting a surrogate pair, and flags it', () => {
    const content = '𝄞'.repeat(1000); // 4 bytes of UTF-8 each, 2 UTF-16 units
    const out = fitString(file(content), 'content', 1024);
    expect(size(out)).toBeLessThanOrEqual(1024);
    expect(out.truncated).toBe(true);
    expect(content.startsWith(out.content)).toBe(true);
    expect(out.content.length % 2).toBe(0);
    expect(size({ ...out, content: content.slice(0, out.content.length + 2) })).toBeGreaterThan(1024);
  });

  it('counts JSON escapes and keeps base64 in whole quanta with step 4', () => {
    const escaped = fitString(file('"\n'.repeat(1000)), 'content', 512);
    expect(size(escaped)).toBeLessThanOrEqual(512);
    const b64 = Buffer.alloc(3000, 7).toString('base64');
    const out = fitString(file(b64), 'content', 1024, 4);
    expect(size(out)).toBeLessThanOrEqual(1024);
    expect(out.content.length % 4).toBe(0);
    expect(b64.startsWith(out.content)).toBe(true);
  });
});
