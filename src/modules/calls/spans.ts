/**
 * The call path's spans, recorded only when traces are on (`platform/trace.ts`; off, every helper
 * here returns at once and allocates nothing). Each is a child of the request's span:
 * - `call.decision`: steps 2–12 and the provider check (`CallService.evaluate`);
 * - `call.claim`: step 13, the claim made durable;
 * - `call.provider`: step 14, the action run by its provider (every attempt, within the timeout);
 * - `call.outcome`: the outcome, or the refusal, made durable with its audit row.
 *
 * Attributes are names, codes and counts only ({@link CALL_ATTRS}): the group, the call's request
 * id (its Idempotency-Key, as in the receipt), the action, provider and level, the grant id, the
 * decision and its code, the call status, the attempts. Never params, results, headers or bodies.
 */
import type { Context, Span } from '@opentelemetry/api';
import { failSpan, startSpan } from '../../platform/trace.js';

/** The span names, in call order. */
export const CALL_SPANS = { decision: 'call.decision', claim: 'call.claim', provider: 'call.provider', outcome: 'call.outcome' } as const;

/** The attribute keys the call spans carry. */
export const CALL_ATTRS = {
  group: 'broker.group',
  requestId: 'broker.request_id',
  action: 'broker.action',
  provider: 'broker.provider',
  level: 'broker.level',
  grantId: 'broker.grant_id',
  decision: 'broker.decision',
  code: 'broker.code',
  status: 'broker.status',
  attempts: 'broker.attempts',
} as const;

/** What a call span names about the call (a `CallSubmission` fits). */
interface CallRef {
  group: string;
  requestId: string;
}

/** What a call span names about the allowed call (an `Allowed` evaluation fits). */
interface AllowedRef {
  shape: { action: { id: string; level: number }; provider: { name: string } };
  grant: { id: string };
}

/** The decision's result (an `Evaluation` fits). */
type DecidedRef =
  | { kind: 'replay'; answer: { status: number } }
  | { kind: 'refused'; decision: string; error: { code: string }; receipt: { action: string | null } }
  | ({ kind: 'allowed' } & AllowedRef);

/**
 * Starts the span `name` of one call (group and request id set), child of `parent` or of the
 * active context; undefined when traces are off.
 */
export function callSpan(name: string, call: CallRef, allowed?: AllowedRef, parent?: Context): Span | undefined {
  const span = startSpan(name, parent);
  if (!span) return undefined;
  span.setAttributes({ [CALL_ATTRS.group]: call.group, [CALL_ATTRS.requestId]: call.requestId });
  if (allowed) {
    const { action, provider } = allowed.shape;
    span.setAttributes({ [CALL_ATTRS.action]: action.id, [CALL_ATTRS.provider]: provider.name, [CALL_ATTRS.level]: action.level, [CALL_ATTRS.grantId]: allowed.grant.id });
  }
  return span;
}

/** Ends the `call.decision` span with the decision (`allowed`, `rejected`, `denied`, `replayed`), its code and the action. */
export function endDecisionSpan(span: Span | undefined, ev: DecidedRef): void {
  if (!span) return;
  if (ev.kind === 'replay') {
    span.setAttributes({ [CALL_ATTRS.decision]: 'replayed', 'http.response.status_code': ev.answer.status });
  } else if (ev.kind === 'refused') {
    span.setAttributes({ [CALL_ATTRS.decision]: ev.decision, [CALL_ATTRS.code]: ev.error.code });
    if (ev.receipt.action !== null) span.setAttribute(CALL_ATTRS.action, ev.receipt.action);
  } else {
    const { action, provider } = ev.shape;
    span.setAttributes({ [CALL_ATTRS.decision]: 'allowed', [CALL_ATTRS.action]: action.id, [CALL_ATTRS.provider]: provider.name, [CALL_ATTRS.level]: action.level, [CALL_ATTRS.grantId]: ev.grant.id });
  }
  span.end();
}

/**
 * Ends a span with the call's `status` (`running`, `succeeded`, `failed`, `timed_out`, `refused`…)
 * and, when not null, a problem `code`; `error` marks the span failed (what it covers went wrong).
 */
export function endCallSpan(span: Span | undefined, status: string, code: string | null = null, error = false, attempts?: number): void {
  if (!span) return;
  span.setAttribute(CALL_ATTRS.status, status);
  if (attempts !== undefined) span.setAttribute(CALL_ATTRS.attempts, attempts);
  if (error) return failSpan(span, code ?? status);
  if (code !== null) span.setAttribute(CALL_ATTRS.code, code);
  span.end();
}
