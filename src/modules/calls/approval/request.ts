/**
 * The exact request a per-call approval signs, and the approval's JWS: the request digest is the
 * sha256 hex of the RFC 8785 canonical JSON of
 * `{method: "POST", path: "/v1/ext/calls", group, request_id, action, params, resources, task_id}`
 * (`resources`: the one resource the action touches, as a list), so an approval covers that
 * request and no other: other params, another resource, another key or another group is another
 * digest. The approval is a compact EdDSA JWS by a registered approver (header `kid` = approver
 * id) with the payload `{group, request_id, request_digest, decision: "approve", iat, exp}`.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { SignJWT, type JWK } from 'jose';
import { z } from 'zod';

/** The request an approver approves, as the held call's view shows it (`approval.request`). */
export interface HeldRequest {
  method: 'POST';
  path: '/v1/ext/calls';
  group: string;
  request_id: string;
  action: string;
  params: unknown;
  resources: string[];
  task_id: string | null;
}

/** The digest a per-call approval signs: sha256 hex of the canonical {@link HeldRequest}. */
export function requestDigest(r: HeldRequest): string {
  return createHash('sha256').update(canonicalize(r)!).digest('hex');
}

/** The signed payload of a per-call approval. `iat`/`exp` are Unix seconds. */
export interface CallApprovalPayload {
  group: string;
  request_id: string;
  request_digest: string;
  decision: 'approve';
  iat: number;
  exp: number;
}

/** The payload's shape, checked after the signature verified. */
export const CallApprovalClaims = z.object({
  group: z.string().min(1),
  request_id: z.string().min(1),
  request_digest: z.string().regex(/^[0-9a-f]{64}$/, 'request_digest is a sha256 hex digest'),
  decision: z.literal('approve'),
  iat: z.number().int(),
  exp: z.number().int(),
});

/**
 * Signs a per-call approval: compact JWS, header `{alg: "EdDSA", kid}`, payload
 * {@link CallApprovalPayload} with `iat` = `nowMs` in seconds and `exp` = `iat + ttlS`.
 * @param privateJwk the approver's private Ed25519 JWK; its `kid` is the approver id.
 * @throws Error when the key has no `kid`.
 */
export function signCallApproval(privateJwk: JWK, call: { group: string; request_id: string; request_digest: string }, nowMs: number, ttlS: number): Promise<string> {
  if (typeof privateJwk.kid !== 'string') throw new Error('the approver key has no "kid" (the approver id)');
  const iat = Math.floor(nowMs / 1000);
  return new SignJWT({ group: call.group, request_id: call.request_id, request_digest: call.request_digest, decision: 'approve' })
    .setProtectedHeader({ alg: 'EdDSA', kid: privateJwk.kid })
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlS)
    .sign(privateJwk);
}
