/**
 * A {@link GrantRequestStore} for an engine that has no implementation of it yet: every operation
 * rejects with 503 `service_unavailable` and reads or writes nothing (fail closed), so a
 * self-service access request is refused rather than lost or half-recorded.
 */
import { ApiError } from '../../platform/http/problem.js';
import type { GrantRequestStore } from './store.js';

/**
 * The refusing store.
 * @param engine the engine's name for the refusal text (`PostgreSQL`).
 */
export function unservedGrantRequestStore(engine: string): GrantRequestStore {
  const refuse = (): Promise<never> =>
    Promise.reject(new ApiError('service_unavailable', `grant requests are not served on ${engine} yet`, {}, { 'Retry-After': '60' }));
  return { get: refuse, list: refuse, timeline: refuse, create: refuse, change: refuse, expireDue: refuse, recordRefusal: refuse };
}
