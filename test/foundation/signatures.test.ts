/**
 * RFC 9421 profile enforcement through a real server: every 401 code, tampering with each signed
 * part, replay, key rotation with its grace period.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest, type GroupCredential } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../helpers/harness.js';

let broker: TestBroker;
let dev: GroupCredential;

beforeAll(async () => {
  broker = await startBroker();
  const key = broker.deps.keys.current('developer');
  dev = { keyid: key.keyid, secret: key.secret };
});
afterAll(() => broker.stop());

interface Sent {
  method?: string;
  path?: string;
  body?: string;
  cred?: GroupCredential;
  createdS?: number;
  idempotencyKey?: string;
  /** Changes the request after signing. */
  tamper?: (r: { method: string; url: URL; headers: Record<string, string>; body?: string }) => void;
}

async function send(s: Sent = {}) {
  const method = s.method ?? 'GET';
  const url = new URL(s.path ?? '/v1/whoami?view=full', broker.url);
  const createdS = s.createdS ?? Math.floor(broker.clock.now() / 1000);
  const headers = signRequest(
    { method, url: url.href, body: s.body, idempotencyKey: s.idempotencyKey ?? (s.body !== undefined ? 'req-1' : undefined) },
    s.cred ?? dev,
    createdS,
  );
  const req = { method, url, headers, body: s.body };
  s.tamper?.(req);
  const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
}

describe('a correctly signed request', () => {
  it('GET /v1/whoami answers 200 with the group and key version', async () => {
    const res = await send();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ group: 'developer', key_version: 1, keyid: 'developer:1' });
  });

  it('a signed POST passes verification (and reaches routing: whoami is GET-only, so 405)', async () => {
    const res = await send({ method: 'POST', body: '{"a":1}' });
    expect(res.status).toBe(405);
    expect(res.body.code).toBe('method_not_allowed');
  });
});

describe('one changed byte answers 401 with the right code', () => {
  const cases: [string, Sent, string][] = [
    ['the body', { method: 'POST', body: '{"a":1}', tamper: (r) => void (r.body = '{"a":2}') }, 'digest_mismatch'],
    ['the body and its digest', { method: 'POST', body: '{"a":1}', tamper: (r) => {
      r.body = '{"a":2}';
      r.headers['content-digest'] = 'sha-256=:' + createHash('sha256').update('{"a":2}').digest('base64') + ':';
    } }, 'signature_invalid'],
    ['the method', { method: 'POST', body: '{"a":1}', tamper: (r) => void (r.method = 'PUT') }, 'signature_invalid'],
    ['the path', { tamper: (r) => void (r.url.pathname = '/v1/whoamj') }, 'signature_invalid'],
    ['the query', { tamper: (r) => void r.url.searchParams.set('view', 'fulm') }, 'signature_invalid'],
    ['the key id (another real group)', { tamper: (r) => void (r.headers['signature-input'] = r.headers['signature-input']!.replace('developer:1', 'security:1')) }, 'signature_invalid'],
    ['the key id (unknown)', { tamper: (r) => void (r.headers['signature-input'] = r.headers['signature-input']!.replace('developer:1', 'developer:9')) }, 'unknown_key'],
    ['the signature bytes', { tamper: (r) => void (r.headers['signature'] = r.headers['signature']!.replace(/=:(.)/, (_m, c: string) => `=:${c === 'A' ? 'B' : 'A'}`)) }, 'signature_invalid'],
    ['the idempotency key', { method: 'POST', body: '{}', tamper: (r) => void (r.headers['idempotency-key'] = 'req-2') }, 'signature_invalid'],
  ];
  it.each(cases)('%s', async (_name, sent, code) => {
    const res = await send(sent);
    expect(res.status).toBe(401);
    expect(res.type).toBe('application/problem+json');
    expect(res.body.code).toBe(code);
  });
});

describe('profile requirements', () => {
  it('no signature: signature_missing', async () => {
    const res = await fetch(`${broker.url}/v1/whoami`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('signature_missing');
  });

  it('a signature under another label: signature_missing', async () => {
    const res = await send({ tamper: (r) => {
      r.headers['signature-input'] = r.headers['signature-input']!.replace(/^broker=/, 'other=');
      r.headers['signature'] = r.headers['signature']!.replace(/^broker=/, 'other=');
    } });
    expect(res.body.code).toBe('signature_missing');
  });

  it('malformed structured fields: signature_invalid', async () => {
    const res = await send({ tamper: (r) => void (r.headers['signature-input'] = 'broker=("@method"') });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('signature_invalid');
  });

  it.each([
    ['alg', (s: string) => s.replace('alg="hmac-sha256"', 'alg="ed25519"')],
    ['tag', (s: string) => s.replace('tag="nanoclaw-broker"', 'tag="other"')],
  ])('a wrong %s parameter: signature_invalid', async (_p, edit) => {
    const res = await send({ tamper: (r) => void (r.headers['signature-input'] = edit(r.headers['signature-input']!)) });
    expect(res.body.code).toBe('signature_invalid');
  });

  it('a body request without Idempotency-Key: 400 idempotency_key_missing', async () => {
    const res = await send({ method: 'POST', body: '{}', tamper: (r) => void delete r.headers['idempotency-key'] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('idempotency_key_missing');
  });

  it('an Idempotency-Key outside [A-Za-z0-9._:-]{1,255}: 400', async () => {
    const res = await send({ method: 'POST', body: '{}', idempotencyKey: 'has space' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('idempotency_key_missing');
  });

  it('a body request without Content-Digest: 401 digest_mismatch', async () => {
    const res = await send({ method: 'POST', body: '{}', tamper: (r) => void delete r.headers['content-digest'] });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('digest_mismatch');
  });

  it('a signature that does not cover @query: signature_invalid', async () => {
    const res = await send({ tamper: (r) => void (r.headers['signature-input'] = r.headers['signature-input']!.replace(' "@query"', '')) });
    expect(res.body.code).toBe('signature_invalid');
    expect(String(res.body.detail)).toContain('@query');
  });
});

describe('freshness', () => {
  it('a request replayed 10 minutes later: signature_expired', async () => {
    const tenMinutesAgo = Math.floor(broker.clock.now() / 1000) - 600;
    const res = await send({ createdS: tenMinutesAgo });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('signature_expired');
  });

  it('a signature created 10 minutes in the future: signature_expired', async () => {
    const res = await send({ createdS: Math.floor(broker.clock.now() / 1000) + 600 });
    expect(res.body.code).toBe('signature_expired');
  });

  it('within the ±300 s skew: accepted', async () => {
    expect((await send({ createdS: Math.floor(broker.clock.now() / 1000) - 290 })).status).toBe(200);
  });
});

describe('key rotation', () => {
  it('the previous version verifies during the grace period, then stops', async () => {
    const oldKey = broker.deps.keys.current('security');
    const old = { keyid: oldKey.keyid, secret: oldKey.secret };
    const next = await broker.deps.keys.rotate('security', 'operator:test');
    expect(next.keyid).toBe('security:2');
    expect((await send({ cred: old })).status).toBe(200);
    expect((await send({ cred: { keyid: next.keyid, secret: next.secret } })).body).toMatchObject({ group: 'security', key_version: 2 });
    broker.clock.advance(broker.deps.config.keyGraceS * 1000);
    const res = await send({ cred: old });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unknown_key');
    expect((await send({ cred: { keyid: next.keyid, secret: next.secret } })).status).toBe(200);
  });
});
