/**
 * Idempotency keys for mutating routes (the `Idempotency-Key` header, as Stripe's API and the
 * IETF httpapi draft use it): a request is bound to its key and the SHA-256 of its body. A retry
 * with the same key and body gets the first request's result again (`Idempotent-Replayed: true`)
 * and changes nothing; the same key with another body is refused with 422
 * `idempotency_key_reused`. Keys are scoped to the principal that sent them.
 *
 * Every mutating route goes through {@link idempotent}; the external-call path keeps its own
 * durable claim (a call's answer is only known after it runs) but refuses a reused key with the
 * same {@link keyReused} error.
 */
import { ApiError } from './http/problem.js';

/** The request's `Idempotency-Key` and the SHA-256 hex of its raw body. */
export interface IdempotencyRef {
  key: string;
  requestHash: string;
}

/** What an earlier request with the same key left: its result, the body hash it was bound to, and its id. */
export interface PriorRequest<T> {
  value: T;
  requestHash: string | null;
  id: string;
}

/** The 422 `idempotency_key_reused` error for `key`, naming what the first request made (`what`, e.g. `task 01J…`). */
export function keyReused(key: string, what?: string): ApiError {
  return new ApiError(
    'idempotency_key_reused',
    `The Idempotency-Key "${key}" was already used${what ? ` for ${what}` : ''} with a different body; use a new key for a different request.`,
  );
}

/**
 * Runs a create-like operation once per idempotency key. Call it inside the transaction that
 * writes the result, so the look-up and the write are atomic: with a store (`platform/db/seam.ts`),
 * inside the plan, where `findPrior` hands over what the store read in the transaction and the
 * value is the plan's `Planned` (nothing to write on a replay).
 * @param idem the request's key and body hash; null or undefined runs `create` unconditionally.
 * @param findPrior reads what an earlier request with `idem.key` (from the same principal) left.
 * @param create does the work (and its audit rows) when the key is new.
 * @param describe names the earlier result in the reuse error (e.g. `grant grt_01J…`).
 * @returns the result and whether it was replayed.
 * @throws ApiError 422 `idempotency_key_reused` when the key was used with another body; what
 *   `create` throws.
 */
export function idempotent<T>(
  idem: IdempotencyRef | null | undefined,
  findPrior: (key: string) => PriorRequest<T> | undefined,
  create: () => T,
  describe: (prior: PriorRequest<T>) => string,
): { value: T; replayed: boolean } {
  if (idem) {
    const prior = findPrior(idem.key);
    if (prior) {
      if (prior.requestHash !== null && prior.requestHash !== idem.requestHash) throw keyReused(idem.key, describe(prior));
      return { value: prior.value, replayed: true };
    }
  }
  return { value: create(), replayed: false };
}
