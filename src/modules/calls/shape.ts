/**
 * Step 2 of the decision order, the request's shape: the body is UTF-8 JSON of the form
 * {@link CallRequest}, names an action of the catalog, and its params are valid against that
 * action's schema. A call that fails here is rejected (400 `malformed_json`, 422
 * `validation_failed`, 404 `unknown_action`) and its Idempotency-Key stays unused.
 */
import { z } from 'zod';
import { ApiError } from '../../platform/http/problem.js';
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

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Step 2: JSON, `CallRequest`, a known action and params valid against its schema. Records the
 * action and task in `receipt`, and a failed step; the caller records the pass.
 * @returns the shape, or the refusal: 400 `malformed_json`, 422 `validation_failed` (with
 *   `issues`, paths under `params` for the action's own schema), 404 `unknown_action`.
 */
export function shapeCall(raw: Uint8Array, catalog: Catalog, receipt: Receipt): Shape | ApiError {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(raw));
  } catch {
    receipt.steps.push({ step: 'request', result: 'fail', note: 'malformed_json' });
    return new ApiError('malformed_json', 'The request body is not valid UTF-8 JSON.');
  }
  const body = CallRequest.safeParse(json);
  if (!body.success) return invalid(receipt, body.error.issues, [], 'The request body is invalid');
  const data = body.data;
  const entry = catalog.get(data.action);
  if (!entry) {
    receipt.steps.push({ step: 'request', result: 'fail', note: 'unknown_action' });
    return new ApiError('unknown_action', `No provider registers the action "${data.action}"; GET /v1/ext/capabilities lists the actions.`);
  }
  receipt.action = entry.action.id;
  const params = entry.action.params.safeParse(data.params ?? {});
  if (!params.success) return invalid(receipt, params.error.issues, ['params'], `The params of ${entry.action.id} are invalid`);
  receipt.task_id = data.task_id ?? null;
  return { action: entry.action, provider: entry.provider, params: params.data, taskId: data.task_id ?? null, resource: entry.action.resource(params.data) };
}

/** A 422 `validation_failed` from zod issues, paths prefixed with `prefix`. */
function invalid(receipt: Receipt, zodIssues: readonly z.core.$ZodIssue[], prefix: string[], what: string): ApiError {
  receipt.steps.push({ step: 'request', result: 'fail', note: 'validation_failed' });
  const issues = zodIssues.map((i) => ({ path: [...prefix, ...i.path.map(String)], code: i.code, message: i.message }));
  return new ApiError('validation_failed', `${what}: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, { issues });
}
