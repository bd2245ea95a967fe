/**
 * Route contracts: every operation is an OpenAPI 3.1 operation (`createRoute` from
 * `@hono/zod-openapi`) declared beside its handler, from the same zod schemas the handler
 * validates with. {@link mount} registers the contract in the router's OpenAPI registry and mounts
 * the handler behind its guard.
 *
 * The broker validates requests itself ({@link jsonBody}, {@link queryParams} in `validate.ts`),
 * not with the library's per-route validators: the signature middleware has already read the raw
 * body once (its bytes are what `Content-Digest` covers), and the answers to bad input are the
 * broker's stable problem codes (400 `malformed_json`, 422 `validation_failed` with `issues`),
 * which a generated validator would replace with its own.
 */
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { AppEnv } from './env.js';
import { ERROR_STATUS, type ErrorCode } from './problem.js';

export { createRoute } from '@hono/zod-openapi';

/** A router whose operations carry OpenAPI contracts; modules build theirs with it. */
export type Router = OpenAPIHono<AppEnv>;

/** A new {@link Router}. */
export function createRouter(): Router {
  return new OpenAPIHono<AppEnv>();
}

/** A route handler: gets the request context, answers a `Response`. */
export type Handler = (c: Context<AppEnv>) => Response | Promise<Response>;

/**
 * One operation: its contract (`createRoute({...})`), the guard that says who may call it
 * (run before the handler; absent for operations every authenticated caller may use), and the
 * handler.
 */
export interface Operation {
  route: RouteConfig;
  guard?: MiddlewareHandler<AppEnv>;
  handler: Handler;
}

/**
 * Registers `op.route` in `router`'s OpenAPI registry and mounts its guard and handler at the
 * route's method and path (`{id}` becomes Hono's `:id`).
 * @returns `router`, for chaining.
 */
export function mount(router: Router, op: Operation): Router {
  router.openAPIRegistry.registerPath(op.route);
  const path = op.route.path.replace(/\{([^}]+)\}/g, ':$1');
  const method = op.route.method.toUpperCase();
  if (op.guard) router.on(method, path, op.guard, op.handler);
  else router.on(method, path, op.handler);
  return router;
}

/** The names of the security schemes every operation refers to (see {@link SECURITY_SCHEMES}). */
export const SIGNED = { rfc9421: [] } as const;
/** Bearer tokens (operators, auditors). */
export const BEARER = { bearer: [] } as const;

/**
 * The two ways to authenticate, as OpenAPI security schemes. OpenAPI has no scheme type for
 * RFC 9421 HTTP Message Signatures, so it is declared as the `Signature` header with the profile
 * in its description (docs/signing.md has the whole profile).
 */
export const SECURITY_SCHEMES = {
  rfc9421: {
    type: 'apiKey',
    in: 'header',
    name: 'Signature',
    description:
      'RFC 9421 HTTP Message Signature by an agent group: `Signature-Input: broker=("@method" "@path" "@query" "content-digest" "idempotency-key");created=…;keyid="<group>:<version>";alg="hmac-sha256";tag="nanoclaw-broker"`, `Signature: broker=:…:`, and `Content-Digest` (RFC 9530, sha-256) on requests with a body. POST, PUT and PATCH need an `Idempotency-Key`.',
  },
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An operator or auditor token (EdDSA JWT minted by `broker token`). POST, PUT and PATCH need an `Idempotency-Key`.',
  },
} as const;

/**
 * RFC 9457 problem details as the broker answers them: `code` is the stable machine-readable
 * reason (one of {@link ERROR_STATUS}'s keys), placed before any large extension such as `receipt`.
 */
export const Problem = z
  .object({
    type: z.string().describe('`urn:nanoclaw-broker:problem:<code>`'),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string(),
    instance: z.string().optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem' });

/**
 * The `responses` entries of an operation's errors: one per HTTP status, each listing the codes
 * it can carry (`code` is declared as that enum), as `application/problem+json`.
 * @param codes the stable codes the operation may answer with, beyond the ones every
 *   authenticated route has ({@link COMMON_ERRORS}).
 */
export function problems(...codes: ErrorCode[]): Record<string, { description: string; content: { 'application/problem+json': { schema: z.ZodType } } }> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of [...COMMON_ERRORS, ...codes]) {
    const status = ERROR_STATUS[code];
    let set = byStatus.get(status);
    if (!set) byStatus.set(status, (set = new Set()));
    set.add(code);
  }
  const out: Record<string, { description: string; content: { 'application/problem+json': { schema: z.ZodType } } }> = {};
  for (const [status, set] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const list = [...set].sort();
    out[String(status)] = {
      description: list.map((c) => `\`${c}\``).join(', '),
      content: { 'application/problem+json': { schema: Problem.extend({ code: z.enum(list as [ErrorCode, ...ErrorCode[]]) }) } },
    };
  }
  return out;
}

/** Codes any authenticated `/v1/*` operation can answer with (authentication, body limit, the fail-closed 503s). */
export const COMMON_ERRORS: readonly ErrorCode[] = [
  'signature_missing',
  'signature_invalid',
  'signature_expired',
  'digest_mismatch',
  'unknown_key',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'internal_error',
];

/** A JSON response entry for `responses`. */
export function json(description: string, schema: z.ZodType): { description: string; content: { 'application/json': { schema: z.ZodType } } } {
  return { description, content: { 'application/json': { schema } } };
}

/** A JSON request body entry for `request.body`. */
export function jsonRequest(schema: z.ZodType): { required: true; content: { 'application/json': { schema: z.ZodType } } } {
  return { required: true, content: { 'application/json': { schema } } };
}

/** The `Idempotency-Key` header every POST, PUT and PATCH carries. */
export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,255}$/)
    .describe('1–255 characters of [A-Za-z0-9._:-]. A retry with the same key and body replays the first answer; the same key with another body is refused (422 `idempotency_key_reused`).'),
});
