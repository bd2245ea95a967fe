/**
 * Test vectors of the file transport's mapping (docs/ipc.md): a fixed key and fixed request files,
 * the signature base each one resolves to, byte for byte, and the verdict, through the functions
 * the broker runs (the file parser, the transport's admission, the request the app receives, the
 * RFC 9421 verifier). The key is the one of docs/signing.md's worked example (the bytes 0x00…0x1f,
 * `developer:1`), and its POST file carries the same signature as that HTTP request: the file's
 * fields stand in for the same components. The expected signatures were computed independently
 * with `openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f`.
 */
import { describe, expect, it } from 'vitest';
import { BrokerClient, IPC_BASE_URL } from '../../src/client/index.js';
import { admit, toRequest } from '../../src/modules/ipc/admit.js';
import { ManualClock } from '../../src/platform/clock.js';
import { verifyBrokerSignature } from '../../src/platform/http/verify.js';
import type { ApiError } from '../../src/platform/http/problem.js';
import { parseRequestFile, requestFile, type IpcRequest, type IpcRequestFile } from '../../src/protocol/ipc.js';
import { SIGNATURE_LABEL } from '../../src/protocol/profile.js';
import { hmacSha256, parseSignature, signatureBase } from '../../src/protocol/signature.js';

const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KEYID = 'developer:1';
const CREATED = 1795226400;
const BODY = '{"action":"github.get_repo","params":{"owner":"acme","repo":"api"}}';

/** A POST /v1/ext/calls file (docs/ipc.md, "Worked example"). */
const POST_FILE: IpcRequestFile = {
  method: 'POST',
  path: '/v1/ext/calls',
  headers: {
    'content-type': 'application/json',
    'idempotency-key': 'req-2026-11-21-0001',
    'content-digest': 'sha-256=:O5Nsoae0NXjvytGmsaCCjUlGa74S9s2zEoLnhbM1QzQ=:',
    'signature-input': 'broker=("@method" "@path" "@query" "content-digest" "idempotency-key");created=1795226400;keyid="developer:1";alg="hmac-sha256";tag="nanoclaw-broker"',
    signature: 'broker=:ddEuJxHOFS5powJ9WzYFYem9U9S9XbvRW4yQsfUTv6I=:',
  },
  body: BODY,
};
const POST_BASE = [
  '"@method": POST',
  '"@path": /v1/ext/calls',
  '"@query": ?',
  '"content-digest": sha-256=:O5Nsoae0NXjvytGmsaCCjUlGa74S9s2zEoLnhbM1QzQ=:',
  '"idempotency-key": req-2026-11-21-0001',
  '"@signature-params": ("@method" "@path" "@query" "content-digest" "idempotency-key");created=1795226400;keyid="developer:1";alg="hmac-sha256";tag="nanoclaw-broker"',
].join('\n');

/** A GET with a query: `query` without its `?`. */
const GET_FILE: IpcRequestFile = {
  method: 'GET',
  path: '/v1/ext/calls',
  query: 'status=succeeded&limit=10',
  headers: {
    'signature-input': 'broker=("@method" "@path" "@query");created=1795226400;keyid="developer:1";alg="hmac-sha256";tag="nanoclaw-broker"',
    signature: 'broker=:+/vSlCo5igExSRZALQ0gL5jHg3ZJzTQ1BPjNEDpCKtw=:',
  },
};
const GET_BASE = [
  '"@method": GET',
  '"@path": /v1/ext/calls',
  '"@query": ?status=succeeded&limit=10',
  '"@signature-params": ("@method" "@path" "@query");created=1795226400;keyid="developer:1";alg="hmac-sha256";tag="nanoclaw-broker"',
].join('\n');

const bytes = (f: unknown) => new TextEncoder().encode(JSON.stringify(f));
function parse(f: unknown): IpcRequest {
  const parsed = parseRequestFile(bytes(f));
  if ('reason' in parsed) throw new Error(parsed.detail);
  return parsed;
}
/** The base the file's fields resolve to (what the broker's verifier signs over). */
function baseOf(f: IpcRequestFile): string {
  const req = toRequest(parse(f), 'vector');
  const sig = parseSignature(req.headers.get('signature-input'), req.headers.get('signature'), SIGNATURE_LABEL)!;
  return signatureBase(req, sig.components, sig.signatureParams);
}
/** The verdict: what the transport and the verifier say about the file in `group`'s directory. */
function verdict(f: IpcRequestFile, group = 'developer', nowS = CREATED): string {
  const parsed = parse(f);
  const refused = admit(parsed, group);
  if (refused) return `${refused.status}`;
  const keys = { lookup: (id: string) => (id === KEYID ? { group: 'developer', version: 1, keyid: KEYID, secret: SECRET } : null) };
  try {
    const v = verifyBrokerSignature(toRequest(parsed, 'vector'), parsed.body, { keys, clock: new ManualClock(nowS * 1000), clockSkewS: 300 });
    return `accepted ${v.group} ${v.keyid} ${v.idempotencyKey ?? '-'}`;
  } catch (err) {
    return (err as ApiError).code;
  }
}

describe('IPC request files: signature base and verdict', () => {
  it('a POST file resolves to the base of the same HTTP request, and is accepted with the same signature', () => {
    expect(baseOf(POST_FILE)).toBe(POST_BASE);
    expect(hmacSha256(SECRET, POST_BASE).toString('base64')).toBe('ddEuJxHOFS5powJ9WzYFYem9U9S9XbvRW4yQsfUTv6I=');
    expect(verdict(POST_FILE)).toBe('accepted developer developer:1 req-2026-11-21-0001');
  });

  it('the same body as body_base64 is the same bytes: the same base and verdict', () => {
    const { body: _text, ...rest } = POST_FILE;
    const b64: IpcRequestFile = { ...rest, body_base64: 'eyJhY3Rpb24iOiJnaXRodWIuZ2V0X3JlcG8iLCJwYXJhbXMiOnsib3duZXIiOiJhY21lIiwicmVwbyI6ImFwaSJ9fQ==' };
    expect(baseOf(b64)).toBe(POST_BASE);
    expect(verdict(b64)).toBe('accepted developer developer:1 req-2026-11-21-0001');
  });

  it('a GET file with a query resolves to its base and is accepted', () => {
    expect(baseOf(GET_FILE)).toBe(GET_BASE);
    expect(hmacSha256(SECRET, GET_BASE).toString('base64')).toBe('+/vSlCo5igExSRZALQ0gL5jHg3ZJzTQ1BPjNEDpCKtw=');
    expect(verdict(GET_FILE)).toBe('accepted developer developer:1 -');
  });

  it('is refused when a covered field changes, when it lies in another group\'s directory, or when it is stale', () => {
    expect(verdict({ ...POST_FILE, body: BODY.replace('api', 'web') })).toBe('digest_mismatch');
    expect(verdict({ ...POST_FILE, headers: { ...POST_FILE.headers, 'idempotency-key': 'req-2026-11-21-0002' } })).toBe('signature_invalid');
    expect(verdict({ ...GET_FILE, query: 'status=failed&limit=10' })).toBe('signature_invalid');
    expect(verdict({ ...GET_FILE, path: '/v1/ext/capabilities' })).toBe('signature_invalid');
    expect(verdict(GET_FILE, 'security')).toBe('403');
    expect(verdict(GET_FILE, 'developer', CREATED + 301)).toBe('signature_expired');
    expect(verdict({ ...GET_FILE, path: '/v1/grants' })).toBe('403');
  });

  it('the agents\' client writes exactly these files', async () => {
    const written: IpcRequestFile[] = [];
    const client = new BrokerClient({
      baseUrl: IPC_BASE_URL,
      credential: { keyid: KEYID, secret: SECRET },
      now: () => CREATED * 1000,
      fetch: async (url, init) => {
        const headers: Record<string, string> = {};
        new Headers(init.headers).forEach((v, k) => (headers[k] = v));
        written.push(requestFile(init.method!, new URL(url), headers, init.body as string | undefined));
        return new Response('{}');
      },
    });
    await client.request('POST', '/v1/ext/calls', { rawBody: BODY, idempotencyKey: 'req-2026-11-21-0001' });
    await client.get('/v1/ext/calls', { query: { status: 'succeeded', limit: 10 } });
    expect(written).toEqual([POST_FILE, GET_FILE]);
  });
});
