/**
 * Published test vectors: RFC 9421 Appendix B.2.5 (hmac-sha256) and the RFC 9530 examples,
 * byte for byte, through the same functions the broker verifies with.
 */
import { describe, expect, it } from 'vitest';
import { parseDictionary } from 'structured-headers';
import { checkContentDigest, contentDigest } from '../../src/protocol/digest.js';
import { hmacSha256, macEquals, parseSignature, signatureBase, signatureParams } from '../../src/protocol/signature.js';

const B2_SECRET = Buffer.from('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==', 'base64');
const B2_REQUEST = {
  method: 'POST',
  url: 'http://example.com/foo?param=Value&Pet=dog',
  headers: new Headers({
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'content-length': '18',
    'signature-input': 'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
    signature: 'sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:',
  }),
};
const B25_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@authority": example.com',
  '"content-type": application/json',
  '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
].join('\n');

describe('RFC 9421 Appendix B.2.5: hmac-sha256', () => {
  const parsed = parseSignature(B2_REQUEST.headers.get('signature-input'), B2_REQUEST.headers.get('signature'), 'sig-b25')!;

  it('parses the covered components and parameters', () => {
    expect(parsed.components).toEqual(['date', '@authority', 'content-type']);
    expect(parsed.params.get('created')).toBe(1618884473);
    expect(parsed.params.get('keyid')).toBe('test-shared-secret');
  });

  it('builds the published signature base byte for byte', () => {
    expect(signatureBase(B2_REQUEST, parsed.components, parsed.innerList)).toBe(B25_BASE);
  });

  it('computes the published signature', () => {
    const mac = hmacSha256(B2_SECRET, B25_BASE);
    expect(mac.toString('base64')).toBe('pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=');
    expect(macEquals(mac, parsed.signature)).toBe(true);
  });

  it('serializes the same signature parameters when signing', () => {
    const innerList = signatureParams(['date', '@authority', 'content-type'], { created: 1618884473, keyid: 'test-shared-secret' });
    expect(signatureBase(B2_REQUEST, ['date', '@authority', 'content-type'], innerList)).toBe(B25_BASE);
  });

  it('rejects a signature over a changed component', () => {
    const changed = { ...B2_REQUEST, headers: new Headers(B2_REQUEST.headers) };
    changed.headers.set('content-type', 'text/plain');
    expect(macEquals(hmacSha256(B2_SECRET, signatureBase(changed, parsed.components, parsed.innerList)), parsed.signature)).toBe(false);
  });

  it('resolves the derived components of RFC 9421 §2.2 for the B.2 request', () => {
    const innerList = signatureParams(['@method', '@path', '@query', '@target-uri', '@scheme', '@request-target'], {});
    expect(signatureBase(B2_REQUEST, ['@method', '@path', '@query', '@target-uri', '@scheme', '@request-target'], innerList)).toBe(
      [
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
        '"@target-uri": http://example.com/foo?param=Value&Pet=dog',
        '"@scheme": http',
        '"@request-target": /foo?param=Value&Pet=dog',
        '"@signature-params": ("@method" "@path" "@query" "@target-uri" "@scheme" "@request-target")',
      ].join('\n'),
    );
  });
});

describe('RFC 9530 Content-Digest examples', () => {
  const body = new TextEncoder().encode('{"hello": "world"}');

  it('produces the sha-256 example', () => {
    expect(contentDigest(body)).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });

  it('produces the sha-512 example', () => {
    expect(contentDigest(body, ['sha-512'])).toBe(
      'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    );
  });

  it('accepts both examples together and refuses a one-byte change', () => {
    const both = 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';
    expect(parseDictionary(both).size).toBe(2);
    expect(checkContentDigest(both, body)).toBeNull();
    expect(checkContentDigest(both, new TextEncoder().encode('{"hello": "world!"}'))).toMatch(/does not match/);
  });

  it('requires sha-256 and a well-formed dictionary', () => {
    expect(checkContentDigest('sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:', body)).toMatch(/no sha-256/);
    expect(checkContentDigest('sha-256=X48E', body)).toMatch(/byte sequence|structured/);
    expect(checkContentDigest(null, body)).toMatch(/missing/);
  });
});
