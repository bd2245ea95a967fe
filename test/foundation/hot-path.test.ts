/**
 * The HTTP hot path's shortcuts give exactly what the general code gives: the parsed
 * `Signature-Input` on every sighting of a value, the `Content-Digest` fast path, the body's SHA-256
 * handed on, the body read from Node's request (an aborted one neither hangs nor crashes, a
 * chunked one is counted against the limit), one request log line and X-Request-Id on every answer.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Hono } from 'hono';
import type { BareItem } from 'structured-headers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/client/index.js';
import { checkContentDigest, contentDigest, sha256 } from '../../src/protocol/digest.js';
import type { AppEnv } from '../../src/platform/http/env.js';
import { parseSignature, parseSignatureInput, SignatureFormatError } from '../../src/protocol/signature.js';
import { requireGroupSignature, verifyBrokerSignature } from '../../src/platform/http/verify.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

/** A deterministic pseudo-random sequence (mulberry32), so a failure reproduces. */
function rng(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const outcome = (f: () => string) => {
  try {
    return f();
  } catch (err) {
    return `throws ${(err as Error).constructor.name}`;
  }
};

describe('parsed Signature-Input values', () => {
  const field = 'broker=("@method" "@path" "@query");created=1795226400;keyid="developer:1";alg="hmac-sha256";tag="nanoclaw-broker"';

  it('give the same member on every sighting', () => {
    const first = parseSignatureInput(field, 'broker');
    const second = parseSignatureInput(field, 'broker');
    const third = parseSignatureInput(field, 'broker');
    expect(first).toEqual({
      components: ['@method', '@path', '@query'],
      params: new Map<string, BareItem>([['created', 1795226400], ['keyid', 'developer:1'], ['alg', 'hmac-sha256'], ['tag', 'nanoclaw-broker']]),
      signatureParams: field.slice('broker='.length),
    });
    expect(second).toEqual(first);
    expect(third).toEqual(second);
    expect(parseSignatureInput(field, 'other')).toBeNull();
  });

  it('keep their errors and their precedence over a missing Signature member', () => {
    for (let i = 0; i < 3; i++) {
      expect(() => parseSignatureInput('broker=(', 'broker')).toThrow(SignatureFormatError);
      expect(() => parseSignatureInput('broker="not a list"', 'broker')).toThrow(/not an inner list/);
      expect(() => parseSignatureInput('broker=("@path" "@path")', 'broker')).toThrow(/covered twice/);
      expect(() => parseSignatureInput('broker=("@path";x)', 'broker')).toThrow(/parameters are not supported/);
      // A member that is not an inner list is not reached when Signature has no such member.
      expect(parseSignature('broker="not a list"', 'other=:AAAA:', 'broker')).toBeNull();
      expect(() => parseSignature('broker=(', 'other=:AAAA:', 'broker')).toThrow(SignatureFormatError);
      expect(() => parseSignature('broker="not a list"', 'broker=:AAAA:', 'broker')).toThrow(/not an inner list/);
    }
  });
});

describe('Content-Digest and the body SHA-256', () => {
  const body = new TextEncoder().encode('{"action":"bench.noop","params":{}}');
  const digest = createHash('sha256').update(body).digest();

  it('accepts the canonical field without parsing and checks every other form as before', () => {
    expect(sha256(body)).toEqual(digest);
    const canonical = contentDigest(body);
    expect(canonical).toBe(`sha-256=:${digest.toString('base64')}:`);
    expect(checkContentDigest(canonical, body)).toBeNull();
    expect(checkContentDigest(canonical, body, digest)).toBeNull();
    expect(checkContentDigest(` ${canonical}`, body)).toBeNull(); // leading space: parsed, still valid
    expect(checkContentDigest(contentDigest(body, ['sha-256', 'sha-512']), body)).toBeNull();
    expect(checkContentDigest(contentDigest(body, ['sha-512', 'sha-256']), body)).toBeNull();
    expect(checkContentDigest(canonical, new TextEncoder().encode('{}'))).toMatch(/does not match/);
    const sha512Wrong = `${canonical}, sha-512=:${Buffer.alloc(64).toString('base64')}:`;
    expect(checkContentDigest(sha512Wrong, body)).toMatch(/sha-512 does not match/);
    expect(checkContentDigest(`sha-256=:${Buffer.alloc(32).toString('base64')}:`, body)).toMatch(/sha-256 does not match/);
  });

  it('verifyBrokerSignature hands on the body SHA-256 for body methods, null otherwise', () => {
    const secret = Buffer.alloc(32, 7);
    const now = 1_795_226_400_000;
    const deps = { keys: { lookup: (keyid: string) => (keyid === 'g:1' ? { group: 'g', version: 1, keyid, secret } : null) }, clock: { now: () => now }, clockSkewS: 300 };
    const url = 'http://127.0.0.1:8787/v1/ext/calls';
    const post = signRequest({ method: 'POST', url, body, idempotencyKey: 'k-1' }, { keyid: 'g:1', secret }, now / 1000);
    const verified = verifyBrokerSignature({ method: 'POST', url, headers: new Headers(post) }, body, deps);
    expect(verified).toMatchObject({ group: 'g', keyVersion: 1, keyid: 'g:1', idempotencyKey: 'k-1' });
    expect(verified.bodySha256).toEqual(digest);
    const get = signRequest({ method: 'GET', url: 'http://127.0.0.1:8787/v1/whoami?x=1' }, { keyid: 'g:1', secret }, now / 1000);
    expect(verifyBrokerSignature({ method: 'GET', url: 'http://127.0.0.1:8787/v1/whoami?x=1', headers: new Headers(get) }, new Uint8Array(0), deps).bodySha256).toBeNull();
  });

  it('the signature middleware sets bodySha256 beside rawBody', async () => {
    const secret = Buffer.alloc(32, 9);
    const now = Date.now();
    const deps = { keys: { lookup: (keyid: string) => ({ group: 'g', version: 1, keyid, secret }) }, clock: { now: () => now }, clockSkewS: 300 };
    const app = new Hono<AppEnv>().use('*', requireGroupSignature(deps)).post('/x', (c) => c.json({ sha: c.get('bodySha256')?.toString('hex'), len: c.get('rawBody').length }));
    const url = 'http://broker.test/x';
    const headers = signRequest({ method: 'POST', url, body, idempotencyKey: 'k-2' }, { keyid: 'g:1', secret }, Math.floor(now / 1000));
    const res = await app.request(url, { method: 'POST', headers, body });
    expect(await res.json()).toEqual({ sha: digest.toString('hex'), len: body.length });
  });
});

describe('through a served broker', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(() => broker.stop());

  const requestLines = () =>
    broker.logs
      .flatMap((chunk) => chunk.split('\n'))
      .filter((l) => l.includes('"msg":"request"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('logs one line per request with req_id, method, path, status and duration_ms, and echoes X-Request-Id', async () => {
    const res = await fetch(`${broker.url}/health?probe=1`, { headers: { 'x-request-id': 'hot-path.1' } });
    expect(res.headers.get('x-request-id')).toBe('hot-path.1');
    const unnamed = await fetch(`${broker.url}/nothing`);
    expect(unnamed.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const lines = requestLines();
    const mine = lines.filter((l) => l['req_id'] === 'hot-path.1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ level: 30, service: 'nanoclaw-broker', method: 'GET', path: '/health', status: 200 });
    expect(typeof mine[0]!['duration_ms']).toBe('number');
    expect(lines.some((l) => l['req_id'] === unnamed.headers.get('x-request-id') && l['status'] === 404)).toBe(true);
  });

  it('replaces an X-Request-Id shaped like a credential instead of logging it', async () => {
    const token = `ghp_${'A1b2C3d4'.repeat(5)}`;
    const res = await fetch(`${broker.url}/health`, { headers: { 'x-request-id': token } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(broker.logs.join('')).not.toContain(token);
  });

  it('a client that goes away in the middle of its body neither hangs nor stops the broker', async () => {
    const { port } = new URL(broker.url);
    const before = requestLines().length;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write('POST /v1/whoami HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nX-Request-Id: aborted.1\r\n\r\n{"a":');
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
      socket.on('error', reject);
    });
    for (let i = 0; i < 100 && !requestLines().slice(before).some((l) => l['req_id'] === 'aborted.1'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(requestLines().find((l) => l['req_id'] === 'aborted.1')).toMatchObject({ method: 'POST', path: '/v1/whoami' });
    expect((await fetch(`${broker.url}/health`)).status).toBe(200);
  });
});

describe('the body limit', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker({ env: { BROKER_BODY_LIMIT_BYTES: '2048' } });
  });
  afterAll(() => broker.stop());

  const chunked = (size: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let sent = 0; sent < size; sent += 512) controller.enqueue(new Uint8Array(Math.min(512, size - sent)).fill(0x20));
        controller.close();
      },
    });

  it('counts a chunked body as it is read: 413 past the limit, read in full below it', async () => {
    const over = await fetch(`${broker.url}/v1/whoami`, { method: 'POST', body: chunked(8192), duplex: 'half' } as RequestInit);
    expect(over.status).toBe(413);
    expect(((await over.json()) as { code: string }).code).toBe('payload_too_large');
    const under = await fetch(`${broker.url}/v1/whoami`, { method: 'POST', body: chunked(1024), duplex: 'half' } as RequestInit);
    expect(under.status).toBe(401); // read, then refused for want of a signature
    expect(((await under.json()) as { code: string }).code).toBe('signature_missing');
  });

  it('answers a Content-Length over the limit 413 on any path, logged and counted', async () => {
    const res = await fetch(`${broker.url}/nowhere`, { method: 'POST', body: 'x'.repeat(4096), headers: { 'x-request-id': 'too-big.1' } });
    expect(res.status).toBe(413);
    expect(res.headers.get('x-request-id')).toBe('too-big.1');
    const line = broker.logs.flatMap((l) => l.split('\n')).find((l) => l.includes('"req_id":"too-big.1"'));
    expect(JSON.parse(line!)).toMatchObject({ method: 'POST', path: '/nowhere', status: 413, msg: 'request' });
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/broker_http_requests_total\{method="POST",route="unmatched",status="413"\} \d+/);
  });

  it('HEAD is answered and logged as HEAD, counted under its GET route', async () => {
    const res = await fetch(`${broker.url}/health`, { method: 'HEAD', headers: { 'x-request-id': 'head.1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('head.1');
    const line = broker.logs.flatMap((l) => l.split('\n')).find((l) => l.includes('"req_id":"head.1"'));
    expect(JSON.parse(line!)).toMatchObject({ method: 'HEAD', path: '/health', status: 200 });
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    expect(metrics).toMatch(/broker_http_requests_total\{method="HEAD",route="\/health",status="200"\} 1/);
  });
});

describe('in-process (app.request, no Node response)', () => {
  it('still sets X-Request-Id', async () => {
    const broker = await startBroker({ listen: false });
    try {
      const res = await broker.client('developer').get('/v1/whoami');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await broker.stop();
    }
  });
});
