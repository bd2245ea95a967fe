/**
 * Helpers for the grants tests: a broker with an `ops` provider, bearer-token requests, approvers
 * with jose-generated Ed25519 keys, and approval JWS built with jose directly (the wire format).
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { z } from 'zod';
import { addApprover } from '../../src/modules/grants/approvers.js';
import { defineAction, type ActionLevel, type Provider } from '../../src/providers/contract.js';
import { startBroker, type BrokerOptions, type TestBroker } from '../helpers/harness.js';

const action = (name: string, level: ActionLevel) =>
  defineAction({
    id: `ops.${name}`,
    level,
    description: `ops ${name}`,
    params: z.strictObject({ resource: z.string().default('acme/api') }),
    resource: (p) => p.resource,
    idempotent: level === 1,
    summarize: (p) => `${name} ${p.resource}`,
    execute: async (p) => ({ done: name, resource: p.resource }),
  });

/** A provider only these tests register: `ops.read` (L1), `ops.write` (L2), `ops.deploy` (L3). */
export function opsProvider(): Provider {
  return { name: 'ops', actions: [action('read', 1), action('write', 2), action('deploy', 3)], unavailableReason: () => null };
}

/** A broker on a temp data dir with the `ops` provider. */
export function startGrantsBroker(opts: BrokerOptions = {}): Promise<TestBroker> {
  return startBroker({ providers: [opsProvider()], ...opts });
}

/** A response from {@link bearer}. */
export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * Sends a request with `Authorization: Bearer <token>` (and a fresh Idempotency-Key for POST/PATCH
 * unless one is given or `idempotencyKey: null`).
 */
export async function bearer(
  broker: TestBroker,
  token: string,
  method: string,
  path: string,
  opts: { json?: unknown; body?: string; headers?: Record<string, string>; idempotencyKey?: string | null } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...opts.headers };
  const hasBody = method === 'POST' || method === 'PATCH';
  if (hasBody && opts.idempotencyKey !== null) headers['idempotency-key'] = opts.idempotencyKey ?? randomUUID();
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(new URL(path, broker.url), { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Mints a token with the broker's own key (what `broker token` does). */
export async function tokenFor(broker: TestBroker, role: 'operator' | 'auditor', subject: string, ttlS = 30 * 24 * 3600): Promise<string> {
  return (await broker.deps.tokens.mint(role, subject, ttlS)).token;
}

/** An approver: id, group and its jose-generated Ed25519 private key. */
export interface TestApprover {
  id: string;
  group: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** Generates an Ed25519 key pair with jose; `register` adds it the way `broker approvers add` does. */
export async function makeApprover(broker: TestBroker, id: string, group: string, register = true): Promise<TestApprover> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const publicJwk = await exportJWK(publicKey);
  if (register) await addApprover(broker.deps, { id, group, publicJwk }, 'operator:test');
  return { id, group, privateKey, publicJwk };
}

/** Signs an approval JWS with jose: header `{alg: EdDSA, kid}`, payload `{grant_id, grant_digest, decision, iat, exp}`. */
export async function signDecision(
  broker: TestBroker,
  approver: Pick<TestApprover, 'id' | 'privateKey'>,
  grant: { id: string; digest: string },
  decision: 'approve' | 'deny' = 'approve',
  lifetimeS = 600,
): Promise<string> {
  const iat = Math.floor(broker.clock.now() / 1000);
  return new SignJWT({ grant_id: grant.id, grant_digest: grant.digest, decision })
    .setProtectedHeader({ alg: 'EdDSA', kid: approver.id })
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetimeS)
    .sign(approver.privateKey);
}

/** Submits an approval JWS as `main` (RFC 9421-signed), raw with `application/jose`. */
export function submit(broker: TestBroker, grantId: string, jws: string) {
  return broker.client('main').request('POST', `/v1/grants/${grantId}/approvals`, { rawBody: jws, headers: { 'content-type': 'application/jose' } });
}

/** Creates a grant as `main` and expects 201. */
export async function createAsMain(broker: TestBroker, terms: Record<string, unknown>): Promise<any> {
  const res = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'ops', reason: 'grants tests', ...terms });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** One day, seven days, in ms. */
export const DAY_MS = 24 * 3600 * 1000;
export const WEEK_MS = 7 * DAY_MS;
