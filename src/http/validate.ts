import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { z } from 'zod';
import type { AppEnv } from './env.js';
import { ApiError } from './problem.js';
import { readRawBody } from './verify.js';

/**
 * Parses the request body as JSON and validates it with `schema`.
 * Uses the bytes the signature middleware already read, so the body is read once.
 * @throws ApiError 400 `malformed_json` when the body is not JSON; 422 `validation_failed` with
 *   the zod `issues` when it does not match.
 */
export async function jsonBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.infer<S>> {
  let raw = c.get('rawBody') as Uint8Array | undefined;
  if (raw === undefined) {
    raw = await readRawBody(c);
    c.set('rawBody', raw);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch {
    throw new ApiError('malformed_json', 'The request body is not valid UTF-8 JSON.');
  }
  return validate(schema, value, 'body');
}

/**
 * sha-256 hex of the raw request body, as the authentication middleware read it: the request hash
 * an Idempotency-Key is bound to, to tell a retry (same body) from a reused key (another body).
 */
export function bodyHash(c: Context<AppEnv>): string {
  return createHash('sha256').update(c.get('rawBody') ?? new Uint8Array(0)).digest('hex');
}

/**
 * Validates the query string (each key's last value) with `schema`.
 * @throws ApiError 422 `validation_failed` with the zod `issues`.
 */
export function queryParams<S extends z.ZodType>(c: Context<AppEnv>, schema: S): z.infer<S> {
  return validate(schema, c.req.query(), 'query');
}

/**
 * Validates any value with `schema`.
 * @param where names the part of the request in the error detail (`body`, `query`, `params`).
 * @throws ApiError 422 `validation_failed` with `issues` (zod's issue list: path, code, message).
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message }));
    throw new ApiError('validation_failed', `The request ${where} is invalid: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, { issues });
  }
  return parsed.data;
}
