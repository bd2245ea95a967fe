/**
 * Step 2 of the decision order, the request's shape: the body is UTF-8 JSON of the form
 * {@link CallRequest}, names an action of the catalog, and its params are valid against that
 * action's schema, and hold no credential. A call that fails here is rejected (400
 * `malformed_json`, 422 `validation_failed`, 422 `secret_in_input`, 404 `unknown_action`) and its
 * Idempotency-Key stays unused.
 */
import { z } from 'zod';
import { IJSON_REFUSAL_DETAIL, parseIJson } from '../../platform/http/json.js';
import { ApiError } from '../../platform/http/problem.js';
import { refuseSecrets } from '../../platform/http/validate.js';
import type { ActionDefinition, Provider } from '../../providers/contract.js';
import type { Catalog } from './catalog.js';
import type { Receipt } from './decision/receipt.js';

/**
 * The body of `POST /v1/ext/calls`: `{action, params?, task_id?}`. Unknown members are refused
 * (422), so a misspelt `taskId` cannot silently skip task coupling.
 */
export const CallRequest = z.strictObject({
  action: z.string().min(1).max(200),
  params: z.unknown().optional(),
  task_id: z.string().min(1).max(128).optional(),
});

/** A well-formed call: its action, provider, validated params, task and resource. */
export interface Shape {
  action: ActionDefinition<any, unknown>;
  provider: Provider;
  params: unknown;
  taskId: string | null;
  resource: string;
}


/**
 * Step 2: JSON, `CallRequest`, a known action and params valid against its schema. Records the
 * action and task in `receipt`, and a failed step; the caller records the pass.
 * @returns the shape, or the refusal: 400 `malformed_json`, 422 `validation_failed` (with
 *   `issues`, paths under `params` for the action's own schema), 422 `secret_in_input` (with
 *   `secrets`), 404 `unknown_action`.
 */
export function shapeCall(raw: Uint8Array, catalog: Catalog, receipt: Receipt): Shape | ApiError {
  const parsed = parseIJson(raw);
  if (parsed.refusal !== undefined) {
    receipt.steps.push({ step: 'request', result: 'fail', note: 'malformed_json' });
    return new ApiError('malformed_json', IJSON_REFUSAL_DETAIL[parsed.refusal]);
  }
  const json = parsed.value;
  const body = CallRequest.safeParse(json);
  if (!body.success) return invalid(receipt, body.error.issues, [], 'The request body is invalid');
  const data = body.data;
  const entry = catalog.get(data.action);
  if (!entry) {
    receipt.steps.push({ step: 'request', result: 'fail', note: 'unknown_action' });
    return new ApiError('unknown_action', `No provider registers the action "${data.action}"; GET /v1/ext/capabilities lists the actions.`);
  }
  receipt.action = entry.action.id;
  const secret = secretIn(data.params, receipt);
  if (secret) return secret;
  const params = entry.action.params.safeParse(data.params ?? {});
  if (!params.success) return invalid(receipt, params.error.issues, ['params'], `The params of ${entry.action.id} are invalid`);
  receipt.task_id = data.task_id ?? null;
  return { action: entry.action, provider: entry.provider, params: params.data, taskId: data.task_id ?? null, resource: entry.action.resource(params.data) };
}

/**
 * Secret-bearing params: the raw `params` (before the action's schema strips or coerces
 * anything) hold a string or member name shaped like a credential (the detectors of
 * `findSecret`, platform/audit/redact.ts: private key blocks, GitHub tokens, Google OAuth tokens
 * and API keys, JWTs, Slack/Stripe keys, AWS access keys, bearer credentials, credential
 * assignments, and the broker's own registered secrets). The agent never hands the broker a
 * credential, so such a call is refused before anything runs.
 * @returns 422 `secret_in_input` with `secrets: [{path, in, kind}]` (paths under `params`; the
 *   value itself is never named), or null when the params hold none.
 */
function secretIn(params: unknown, receipt: Receipt): ApiError | null {
  try {
    refuseSecrets({ params }, 'body');
    return null;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    receipt.steps.push({ step: 'request', result: 'fail', note: 'secret_in_input' });
    return err;
  }
}

/** A 422 `validation_failed` from zod issues, paths prefixed with `prefix`. */
function invalid(receipt: Receipt, zodIssues: readonly z.core.$ZodIssue[], prefix: string[], what: string): ApiError {
  receipt.steps.push({ step: 'request', result: 'fail', note: 'validation_failed' });
  const issues = zodIssues.map((i) => ({ path: [...prefix, ...i.path.map(String)], code: i.code, message: i.message }));
  return new ApiError('validation_failed', `${what}: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, { issues });
}
