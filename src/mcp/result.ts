/**
 * Tool results from broker answers. A success is the broker's JSON body twice: as
 * `structuredContent` (checked by the client against the tool's output schema) and as JSON text
 * (MCP 2025-11-25, "Structured Content": a server returning structured content also returns it
 * serialized). A refusal is an error result (`isError: true`) whose text is the problem details
 * reordered for an agent: the `code`, one sentence of what to do (`what_to_do`), the decision step
 * that failed (`failed_step`, for calls), the broker's `detail`, the other members, and the
 * receipt last. An unreachable broker is an error result naming the URL and the cause.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BrokerUnreachableError, type BrokerResponse } from '../client/index.js';
import { adviceFor, type AdviceContext } from './advice.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The JSON text content of a result. */
const text = (body: unknown) => [{ type: 'text' as const, text: typeof body === 'string' ? body : JSON.stringify(body, null, 2) }];

/** The step of a receipt that failed (`{steps: [{step, result}]}`), or null. */
function failedStep(receipt: unknown): string | null {
  if (!isRecord(receipt) || !Array.isArray(receipt['steps'])) return null;
  const failed = (receipt['steps'] as unknown[]).find((s) => isRecord(s) && s['result'] === 'fail') as Record<string, unknown> | undefined;
  return typeof failed?.['step'] === 'string' ? failed['step'] : null;
}

/**
 * A refusal as the agent reads it: `{code, what_to_do, failed_step?, detail, status, …, receipt?}`.
 * `failed_step` is present when the problem carries a receipt (calls: signature, request,
 * idempotency, backpressure, grant, expiry, level, deny_list, allow_list, resource, task,
 * approval, provider, circuit, limits, claim, execute). `type`, `title` and `instance` are left out: `code` says it.
 * A body that is not a problem becomes `{code: "http_<status>", detail: <the body>}`.
 */
export function refusal(res: BrokerResponse, ctx: AdviceContext): Record<string, unknown> {
  const problem = isRecord(res.body) ? res.body : { code: `http_${res.status}`, detail: typeof res.body === 'string' ? res.body : JSON.stringify(res.body) };
  const { code, detail, status, receipt, type: _type, title: _title, instance: _instance, ...rest } = problem;
  const step = failedStep(receipt);
  return {
    code,
    what_to_do: adviceFor(problem, ctx),
    ...(step !== null ? { failed_step: step } : {}),
    detail,
    status: status ?? res.status,
    ...rest,
    ...(receipt !== undefined ? { receipt } : {}),
  };
}

/** The tool result of one broker answer: a success with structured content, or a {@link refusal}. */
export function toResult(res: BrokerResponse, ctx: AdviceContext): CallToolResult {
  if (res.status >= 400) return { content: text(refusal(res, ctx)), isError: true };
  return { content: text(res.body), ...(isRecord(res.body) ? { structuredContent: res.body } : {}) };
}

/**
 * The tool result of one request: {@link toResult} of its answer, or, when the broker could not
 * be reached ({@link BrokerUnreachableError}), an error result whose JSON text is
 * `{code: "broker_unreachable", what_to_do, detail, url, cause}` (`cause`: `ECONNREFUSED`,
 * `ENOTFOUND`, a timeout code, a TLS code, or null) instead of the SDK's bare "fetch failed".
 * @param requestId the call's Idempotency-Key (ext_call and the typed action tools): named so the
 *   agent retries with it, which replays a call that did run instead of running it twice.
 * @throws whatever `sent` rejects with other than {@link BrokerUnreachableError}.
 */
export async function answer(sent: Promise<BrokerResponse>, ctx: AdviceContext, requestId?: string): Promise<CallToolResult> {
  try {
    return toResult(await sent, ctx);
  } catch (err) {
    if (!(err instanceof BrokerUnreachableError)) throw err;
    const retry = requestId === undefined ? '' : ` Retry with request_id ${requestId} once it is reachable: a call that did run is replayed, never run twice.`;
    const body = {
      code: 'broker_unreachable',
      what_to_do: requestId === undefined ? 'Call again once the broker is reachable; tell an operator if it stays down.' : `Call again with request_id ${requestId} once the broker is reachable.`,
      detail: `Cannot reach the broker at ${err.url}: ${err.causeCode ?? 'no answer'} (${err.reason}).${retry}`,
      url: err.url,
      cause: err.causeCode,
      ...(requestId === undefined ? {} : { request_id: requestId }),
    };
    return { content: text(body), isError: true };
  }
}

/** An error result with a plain message (bad tool input, an unknown tool). */
export function errorResult(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}
