/**
 * Approvers and their signatures: registered with an
 * id, a group and an Ed25519 public JWK, in `policies/approvers.json` or with
 * `broker approvers add`; an approval is a compact EdDSA JWS with the payload
 * `{grant_id, grant_digest, decision, iat, exp}` and the header `kid` = the approver id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, errors, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { z } from 'zod';
import { ApiError } from '../../platform/http/problem.js';
import { GroupName } from '../identity/groups.js';
import type { GrantStore } from './store.js';

/** Approver ids: 1–64 of `[A-Za-z0-9._@-]` (an operator's token subject, if they have one). */
export const ApproverId = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'approver ids are 1–64 of [A-Za-z0-9._@-]');

/** An Ed25519 public JWK (RFC 8037): `{kty: "OKP", crv: "Ed25519", x}`, without `d`. */
export const Ed25519PublicJwk = z
  .looseObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x is 32 bytes of base64url') })
  .refine((j) => !('d' in j), 'this is a private key: register only the public part (no "d")')
  .transform((j): JWK => ({ kty: 'OKP', crv: 'Ed25519', x: j.x }));

const ApproversFile = z.strictObject({
  approvers: z
    .array(z.strictObject({ id: ApproverId, group: GroupName, public_jwk: Ed25519PublicJwk }))
    .refine((list) => new Set(list.map((a) => a.id)).size === list.length, 'approver ids must be unique'),
});

/** A registered approver. `source` says where it is registered. */
export interface Approver {
  id: string;
  group: string;
  publicJwk: JWK;
  /** RFC 7638 sha256 thumbprint of the public key. */
  thumbprint: string;
  source: 'policy' | 'cli';
}

/** What the registry needs: the store (approvers added with the CLI) and where `approvers.json` is. */
export interface ApproverDeps {
  stores: { grants: GrantStore };
  config: { policiesDir: string };
}

/** One entry of `approvers.json`, validated. */
export type ApproverEntry = z.infer<typeof ApproversFile>['approvers'][number];

/**
 * Reads and validates `<policiesDir>/approvers.json` (optional: no file is no approvers). Called at
 * start-up by `runBroker` (`broker serve`), so a malformed file stops the broker before it serves, and again on
 * every approval, so an edit takes effect without a restart.
 * @returns the entries, in file order.
 * @throws Error naming the file and the JSON syntax error or the first invalid fields.
 */
export function readApproversFile(policiesDir: string): ApproverEntry[] {
  const file = path.join(policiesDir, 'approvers.json');
  if (!fs.existsSync(file)) return [];
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = ApproversFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data.approvers;
}

/**
 * Every approver: `<policiesDir>/approvers.json` (optional file) first, then those added with
 * `broker approvers add`. An id in both is the file's.
 * @throws Error naming the file and what is wrong when approvers.json is malformed (see
 *   {@link readApproversFile}).
 */
export async function listApprovers(deps: ApproverDeps): Promise<Approver[]> {
  const fromFile: Approver[] = [];
  for (const a of readApproversFile(deps.config.policiesDir)) {
    fromFile.push({ id: a.id, group: a.group, publicJwk: a.public_jwk, thumbprint: await calculateJwkThumbprint(a.public_jwk), source: 'policy' });
  }
  const taken = new Set(fromFile.map((a) => a.id));
  const rows = await deps.stores.grants.approvers();
  const fromDb = rows
    .filter((r) => !taken.has(r.id))
    .map((r): Approver => ({ id: r.id, group: r.group, publicJwk: JSON.parse(r.publicJwk) as JWK, thumbprint: r.thumbprint, source: 'cli' }));
  return [...fromFile, ...fromDb];
}

/** The approver with this id, or undefined. See {@link listApprovers}. */
export async function findApprover(deps: ApproverDeps, id: string): Promise<Approver | undefined> {
  return (await listApprovers(deps)).find((a) => a.id === id);
}

/**
 * Registers an approver in the database (`broker approvers add`), audited as `approver.added`.
 * @param publicJwk an Ed25519 public JWK (any object; validated here).
 * @param actor who adds it (`operator:<name>`).
 * @throws ApiError 422 `validation_failed` (bad id, group or key, or a private key),
 *   409 `conflict` when the id is already registered (in the file or the database).
 */
export async function addApprover(deps: ApproverDeps, input: { id: string; group: string; publicJwk: unknown }, actor: string): Promise<Approver> {
  const parsed = z.object({ id: ApproverId, group: GroupName, publicJwk: Ed25519PublicJwk }).safeParse(input);
  if (!parsed.success) {
    throw new ApiError('validation_failed', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const { id, group, publicJwk } = parsed.data;
  if (await findApprover(deps, id)) throw new ApiError('conflict', `An approver "${id}" is already registered.`);
  const thumbprint = await calculateJwkThumbprint(publicJwk);
  return deps.stores.grants.addApprover(id, (existing) => {
    if (existing) throw new ApiError('conflict', `An approver "${id}" is already registered.`);
    return {
      write: { id, group, publicJwk: JSON.stringify(publicJwk), thumbprint, addedBy: actor },
      audit: [{ actor, kind: 'approver.added', subject: `approver:${id}`, detail: { id, group, thumbprint } }],
      result: { id, group, publicJwk, thumbprint, source: 'cli' },
    };
  });
}

/** A new approver key pair: the private JWK carries `kid` = the approver id and `alg: EdDSA`. */
export async function generateApproverKey(id: string): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: id, alg: 'EdDSA' };
  const { kty, crv, x } = await exportJWK(publicKey);
  return { privateJwk, publicJwk: { kty, crv, x } };
}

/** The signed payload of an approval. `iat`/`exp` are Unix seconds. */
export interface ApprovalPayload {
  grant_id: string;
  grant_digest: string;
  decision: 'approve' | 'deny';
  iat: number;
  exp: number;
}

/**
 * Signs an approval: compact JWS, header `{alg: "EdDSA", kid: <approver id>}`, payload
 * {@link ApprovalPayload}.
 * @param privateJwk the approver's private Ed25519 JWK; its `kid` must be the approver id.
 * @throws Error when the key has no `kid`.
 */
export async function signApproval(privateJwk: JWK, payload: ApprovalPayload): Promise<string> {
  if (typeof privateJwk.kid !== 'string') throw new Error('the approver key has no "kid" (the approver id)');
  return new SignJWT({ grant_id: payload.grant_id, grant_digest: payload.grant_digest, decision: payload.decision })
    .setProtectedHeader({ alg: 'EdDSA', kid: privateJwk.kid })
    .setIssuedAt(payload.iat)
    .setExpirationTime(payload.exp)
    .sign(privateJwk);
}

const Payload = z.object({
  grant_id: z.string().min(1),
  grant_digest: z.string().regex(/^[0-9a-f]{64}$/, 'grant_digest is a sha256 hex digest'),
  decision: z.enum(['approve', 'deny']),
  iat: z.number().int(),
  exp: z.number().int(),
});

/** Options for {@link verifyApproval}: the clock, allowed skew (s) and longest signature life (s). */
export interface VerifyApprovalOptions {
  nowMs: number;
  clockSkewS: number;
  maxLifetimeS: number;
}

/**
 * Verifies an approval JWS against the approver named by its `kid`: EdDSA signature with the
 * registered key, `exp` not passed, `iat` not in the future (beyond the skew), `exp - iat` at most
 * `maxLifetimeS`, and a payload of the documented shape. It does not check the grant: the caller
 * compares `grant_id` and `grant_digest`.
 * @throws ApiError 422 `approval_invalid` naming what failed; 503 `service_unavailable` when
 *   `approvers.json` cannot be read or is malformed (nothing is recorded).
 */
export async function verifyApproval(deps: ApproverDeps, jws: string, opts: VerifyApprovalOptions): Promise<{ approver: Approver; payload: ApprovalPayload }> {
  const { approver, claims } = await verifyApproverJws(deps, jws, opts);
  const payload = Payload.safeParse(claims);
  if (!payload.success) throw approvalInvalid(`The approval payload is invalid: ${payload.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);
  return { approver, payload: payload.data };
}

/**
 * The signature checks every approver JWS passes, whatever it approves (a grant's terms, one held
 * call): compact JWS with alg EdDSA, `kid` a registered approver, the signature verifying with its
 * key, `iat` and `exp` present, `exp` not passed, `iat` not in the future (beyond the skew), and
 * `exp - iat` at most `maxLifetimeS`. The caller parses and checks the claims.
 * @returns the approver and the verified claims (unparsed).
 * @throws ApiError 422 `approval_invalid` naming what failed; 503 `service_unavailable` when
 *   `approvers.json` cannot be read or is malformed.
 */
export async function verifyApproverJws(deps: ApproverDeps, jws: string, opts: VerifyApprovalOptions): Promise<{ approver: Approver; claims: Record<string, unknown> }> {
  let kid: unknown;
  try {
    const header = decodeProtectedHeader(jws);
    if (header.alg !== 'EdDSA') throw approvalInvalid('The approval must be signed with alg EdDSA.');
    kid = header.kid;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw approvalInvalid('The approval is not a compact JWS.');
  }
  if (typeof kid !== 'string') throw approvalInvalid('The approval header has no kid (the approver id).');
  const approver = await findApprover(deps, kid).catch((err: unknown) => {
    throw new ApiError('service_unavailable', `The approvers policy cannot be read, so no approval is recorded: ${err instanceof Error ? err.message : String(err)}.`);
  });
  if (!approver) throw approvalInvalid(`"${kid}" is not a registered approver.`);
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(jws, approver.publicJwk, {
      algorithms: ['EdDSA'],
      currentDate: new Date(opts.nowMs),
      clockTolerance: opts.clockSkewS,
      requiredClaims: ['iat', 'exp'],
    }));
  } catch (err) {
    if (err instanceof errors.JWSSignatureVerificationFailed) throw approvalInvalid(`The signature does not verify with approver ${approver.id}'s registered key.`);
    if (err instanceof errors.JWTExpired) throw approvalInvalid('The approval has expired; sign a new one.');
    throw approvalInvalid(`The approval is not valid: ${err instanceof Error ? err.message : String(err)}.`);
  }
  const { iat, exp } = claims;
  if (typeof iat !== 'number' || typeof exp !== 'number') throw approvalInvalid('The approval payload is invalid: iat and exp are numbers.');
  if (iat * 1000 > opts.nowMs + opts.clockSkewS * 1000) throw approvalInvalid('The approval is issued in the future (iat).');
  if (exp - iat > opts.maxLifetimeS) throw approvalInvalid(`An approval may be valid for at most ${opts.maxLifetimeS} s (exp - iat).`);
  return { approver, claims };
}

/** 422 `approval_invalid`. */
export function approvalInvalid(detail: string, extensions: Record<string, unknown> = {}): ApiError {
  return new ApiError('approval_invalid', detail, extensions);
}
