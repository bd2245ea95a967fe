/**
 * Route contracts: every operation is an OpenAPI 3.1 operation (`createRoute` from
 * `@hono/zod-openapi`) declared beside its handler, from the same zod schemas the handler
 * validates with. {@link mount} registers the contract in the router's OpenAPI registry and mounts
 * the handler behind its guard; `OpenAPIHono.route` merges the registries of the modules' routers
 * into the app's, which serves the whole document at `GET /openapi.json`.
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

export { createRoute, type RouteConfig } from '@hono/zod-openapi';

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
 * (run before the handler; absent for operations every authenticated caller may use, or that
 * check the principal themselves), and the handler.
 */
export interface Operation {
  route: RouteConfig;
  guard?: MiddlewareHandler<AppEnv>;
  handler: Handler;
}

/**
 * Registers each operation's contract in `router`'s OpenAPI registry and mounts its guard and
 * handler at the route's method and path (`{id}` becomes Hono's `:id`), in the order given.
 * @returns `router`, for chaining.
 */
export function mount(router: Router, ...ops: Operation[]): Router {
  for (const op of ops) {
    router.openAPIRegistry.registerPath(op.route);
    const path = op.route.path.replace(/\{([^}]+)\}/g, ':$1');
    const method = op.route.method.toUpperCase();
    if (op.guard) router.on(method, path, op.guard, op.handler);
    else router.on(method, path, op.handler);
  }
  return router;
}

/** The names of the security schemes every operation refers to (see {@link SECURITY_SCHEMES}). */
export const SIGNED: Readonly<Record<'rfc9421', string[]>> = { rfc9421: [] };
/** Bearer tokens (operators, auditors). */
export const BEARER: Readonly<Record<'bearer', string[]>> = { bearer: [] };

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
 * Extensions (`issues`, `allowed`, `receipt`, …) are further members.
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

/** A problem+json response entry of `responses`. */
export interface ProblemResponse {
  description: string;
  headers?: z.ZodObject;
  content: { 'application/problem+json': { schema: z.ZodType } };
}

/** The challenge every 401 carries (RFC 9110 §11.6.1): `Signature …` and, where a token may go, `Bearer …`. */
const CHALLENGE = z.object({
  'WWW-Authenticate': z.string().describe('`Signature realm="nanoclaw-broker"` (RFC 9421 §5.1, with `Accept-Signature`) and/or `Bearer realm="nanoclaw-broker"` (RFC 6750 §3).'),
});

/**
 * The `responses` entries of errors: one per HTTP status, each listing the codes it can carry
 * (`code` is declared as that enum), as `application/problem+json`. `extensions` adds members the
 * problems of one status carry (e.g. `receipt` on every refusal of a call).
 */
export function problemResponses(codes: readonly ErrorCode[], extensions: z.ZodRawShape = {}): Record<string, ProblemResponse> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    let set = byStatus.get(status);
    if (!set) byStatus.set(status, (set = new Set()));
    set.add(code);
  }
  const out: Record<string, ProblemResponse> = {};
  for (const [status, set] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const list = [...set].sort();
    out[String(status)] = {
      description: list.map((c) => `\`${c}\``).join(', '),
      ...(status === 401 ? { headers: CHALLENGE } : {}),
      content: { 'application/problem+json': { schema: Problem.extend({ code: z.enum(list as [ErrorCode, ...ErrorCode[]]), ...extensions }) } },
    };
  }
  return out;
}

/**
 * The error responses of an authenticated `/v1/*` operation: {@link COMMON_ERRORS} and `codes`.
 * @param codes the stable codes the operation itself may answer with.
 */
export function problems(...codes: ErrorCode[]): Record<string, ProblemResponse> {
  return problemResponses([...COMMON_ERRORS, ...codes]);
}

/** The error responses of an unauthenticated operation (outside `/v1/*`): {@link PUBLIC_ERRORS} and `codes`. */
export function publicProblems(...codes: ErrorCode[]): Record<string, ProblemResponse> {
  return problemResponses([...PUBLIC_ERRORS, ...codes]);
}

/** Codes any request can get, before any route: the body limit, and the last-resort 500. */
export const PUBLIC_ERRORS: readonly ErrorCode[] = ['payload_too_large', 'internal_error'];

/**
 * Codes any authenticated `/v1/*` operation can answer with: the signature's and the bearer
 * token's 401s, 403 `forbidden` (a principal the route does not serve), 503 `service_unavailable`
 * (token keys or revocations cannot be read: fail closed) and {@link PUBLIC_ERRORS}.
 */
export const COMMON_ERRORS: readonly ErrorCode[] = [
  'signature_missing',
  'signature_invalid',
  'signature_expired',
  'digest_mismatch',
  'unknown_key',
  'unauthorized',
  'forbidden',
  'service_unavailable',
  ...PUBLIC_ERRORS,
];

/**
 * Codes every operation that takes a body and writes can answer with: no `Idempotency-Key`, a
 * body that is not JSON, fails its schema or carries a secret, and an audit row that cannot be
 * written (nothing changes then).
 */
export const WRITE_ERRORS: readonly ErrorCode[] = ['idempotency_key_missing', 'malformed_json', 'validation_failed', 'secret_in_input', 'audit_unavailable'];

/**
 * A JSON response entry for `responses`.
 * @param headers the response headers it carries (e.g. {@link ETagHeader}), as a zod object.
 */
export function json(description: string, schema: z.ZodType, headers?: z.ZodObject): { description: string; headers?: z.ZodObject; content: { 'application/json': { schema: z.ZodType } } } {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } };
}

/** A non-JSON response entry (`text/html`, the Prometheus text format): the body is a string. */
export function text(description: string, mediaType: string): { description: string; content: Record<string, { schema: z.ZodType }> } {
  return { description, content: { [mediaType]: { schema: z.string() } } };
}

/**
 * A JSON request body entry for `request.body`.
 * @param required false for operations that also take an empty body (e.g. `{reason?}`).
 */
export function jsonRequest(schema: z.ZodType, required = true): { required: boolean; content: Record<string, { schema: z.ZodType }> } {
  return { required, content: { 'application/json': { schema } } };
}

/** The `Idempotency-Key` header every POST, PUT and PATCH carries. */
export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,255}$/)
    .describe('1–255 characters of [A-Za-z0-9._:-]. A retry with the same key and body replays the first answer; the same key with another body is refused (422 `idempotency_key_reused`).'),
});

/** `Idempotent-Replayed: true` on an answer replayed for a retried `Idempotency-Key`. */
export const ReplayedHeader = z.object({
  'Idempotent-Replayed': z.literal('true').optional().describe('Present on an answer replayed for a retried Idempotency-Key.'),
});
