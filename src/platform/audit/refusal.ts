/**
 * The audited refusal: some refusals are facts the trail must keep (an approval refused, a task
 * move refused by policy, a call refused by its decision), although the change they refuse rolls
 * back with its own audit rows. The refusal's row is appended in a transaction of its own, then
 * the refusal is answered. When that row cannot be written, the request is answered with the
 * audit failure (503 `audit_unavailable`) instead: a refusal is never answered as if it had been
 * recorded (fail-closed).
 */
import { ApiError, type ErrorCode } from '../http/problem.js';

/**
 * Records a refusal: appends its audit row(s) in a transaction of its own (a store method, e.g.
 * `GrantStore.recordRefusal`). Resolves once committed, or rejects (503 `audit_unavailable`).
 */
export type RecordRefusal = (refusal: ApiError) => Promise<unknown>;

/**
 * Records `refusal` with `record`, then throws it.
 * @throws the refusal; or what `record` rejects with (503 `audit_unavailable`) when it could not be recorded.
 */
export async function refuse(refusal: ApiError, record: RecordRefusal): Promise<never> {
  await record(refusal);
  throw refusal;
}

/**
 * Runs `attempt`; when it rejects with an ApiError whose code is in `audited`, the refusal is
 * recorded ({@link refuse}) before it is rethrown. Other errors (request errors such as 404 or
 * 422, failures) pass through unrecorded.
 * @returns what `attempt` resolves to.
 * @throws what `attempt` throws; or the audit failure of {@link refuse}.
 */
export async function withAuditedRefusals<T>(audited: ReadonlySet<ErrorCode>, attempt: () => Promise<T>, record: RecordRefusal): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (err instanceof ApiError && audited.has(err.code)) return refuse(err, record);
    throw err;
  }
}
