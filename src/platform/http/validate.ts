import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { z } from 'zod';
import { findSecret, type SecretKind } from '../audit/redact.js';
import type { AppEnv } from './env.js';
import { IJSON_REFUSAL_DETAIL, parseIJson } from './json.js';
import { ApiError } from './problem.js';
import { readRawBody } from './verify.js';

/**
 * Parses the request body as JSON, refuses it when it carries a secret ({@link refuseSecrets}),
 * and validates it with `schema`. Uses the bytes the signature middleware already read, so the
 * body is read once.
 * @throws ApiError 400 `malformed_json` when the body is not I-JSON (RFC 7493: UTF-8 JSON without
 *   lone surrogates, `json.ts`); 422 `secret_in_input` when a
 *   string or member name in it holds a secret; 422 `validation_failed` with the zod `issues` when
 *   it does not match.
 */
export async function jsonBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S, options: ValidateOptions = {}): Promise<z.infer<S>> {
  let raw = c.get('rawBody') as Uint8Array | undefined;
  if (raw === undefined) {
    raw = await readRawBody(c);
    c.set('rawBody', raw);
  }
  const parsed = parseIJson(raw);
  if (parsed.refusal !== undefined) throw new ApiError('malformed_json', IJSON_REFUSAL_DETAIL[parsed.refusal]);
  return validate(schema, parsed.value, 'body', options);
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
  return validate(schema, c.req.query(), 'query', { refuseSecrets: false });
}

/** How {@link validate} treats secrets in the value. */
export interface ValidateOptions {
  /** Refuse a value that carries a secret ({@link refuseSecrets}); default true. */
  refuseSecrets?: boolean;
  /** Secret kinds accepted at a path (members joined with `.`), see {@link RefuseSecretsOptions.allow}. */
  allow?: RefuseSecretsOptions['allow'];
}

/**
 * Validates any value with `schema`, after refusing it when it carries a secret (unless
 * `options.refuseSecrets` is false, as for query strings, which are never stored).
 * @param where names the part of the request in the error detail (`body`, `query`, `params`).
 * @throws ApiError 422 `secret_in_input` (see {@link refuseSecrets}); 422 `validation_failed` with
 *   `issues` (zod's issue list: path, code, message).
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: string, options: ValidateOptions = {}): z.infer<S> {
  if (options.refuseSecrets !== false) refuseSecrets(value, where, options.allow === undefined ? {} : { allow: options.allow });
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message }));
    throw new ApiError('validation_failed', `The request ${where} is invalid: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, { issues });
  }
  return parsed.data;
}

/** A secret found in input: where (the member path, array indexes as strings) and which detector, never the value. */
export interface SecretFinding {
  /** Path of the string, or of the object whose member name holds the secret (`in: "name"`). */
  path: string[];
  /** `value`: the string at `path`; `name`: a member name of the object at `path`. */
  in: 'value' | 'name';
  /** The detector that matched (`findSecret` in src/platform/audit/redact.ts). */
  kind: SecretKind;
}

/** Options of {@link findSecretsIn} and {@link refuseSecrets}. */
export interface RefuseSecretsOptions {
  /**
   * Secret kinds accepted in the string at a path (members joined with `.`, e.g. `{jws: ["jwt"]}`
   * for a field that carries a signature by design). Registered values (`broker_secret`) are
   * refused everywhere.
   */
  allow?: Readonly<Record<string, readonly SecretKind[]>>;
}

/**
 * Every secret in a JSON value: each string and each member name is run through `findSecret`
 * (src/platform/audit/redact.ts), the detector redaction uses (credential shapes and every secret the broker
 * holds). Walks iteratively, so nesting depth costs no stack. A member name holding a secret is
 * reported on its object and not descended into, so no reported path holds a secret.
 * @returns the findings in document order (empty when there is none).
 */
export function findSecretsIn(value: unknown, options: RefuseSecretsOptions = {}): SecretFinding[] {
  const allow = new Map(Object.entries(options.allow ?? {}).map(([path, kinds]) => [path, new Set(kinds)]));
  const findings: SecretFinding[] = [];
  const stack: { value: unknown; path: string[] }[] = [{ value, path: [] }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const v = item.value;
    if (typeof v === 'string') {
      const kind = findSecret(v, allow.get(item.path.join('.')));
      if (kind !== null) findings.push({ path: item.path, in: 'value', kind });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: [...item.path, String(i)] });
    } else if (typeof v === 'object' && v !== null) {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [name, member] = entries[i]!;
        const kind = findSecret(name);
        if (kind !== null) findings.push({ path: item.path, in: 'name', kind });
        else stack.push({ value: member, path: [...item.path, name] });
      }
    }
  }
  return findings;
}

/**
 * Refuses input that carries a secret, before anything is stored or run: the broker never takes
 * a credential in through its API, so none can reach a row, a response or a log line from there.
 * The problem names each field and the detector's kind, never the value.
 * @param where names the part of the request in the detail (`body`, `options`, `params`).
 * @throws ApiError 422 `secret_in_input` with `secrets: [{path, in, kind}]` (see {@link SecretFinding}).
 */
export function refuseSecrets(value: unknown, where: string, options: RefuseSecretsOptions = {}): void {
  const secrets = findSecretsIn(value, options);
  if (secrets.length === 0) return;
  const listed = secrets.map((s) => `${s.path.join('.') || '(root)'}${s.in === 'name' ? ' (a member name)' : ''}: ${s.kind}`).join('; ');
  throw new ApiError(
    'secret_in_input',
    `The request ${where} holds a secret (${listed}); nothing was stored or run. Remove it, or refer to the secret by name, and send the request again.`,
    { secrets },
  );
}
