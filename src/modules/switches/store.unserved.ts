/**
 * A {@link SwitchStore} for an engine that has no implementation of it yet: every operation
 * rejects with 503 `service_unavailable` and reads or writes nothing (fail closed).
 */
import { ApiError } from '../../platform/http/problem.js';
import type { SwitchStore } from './store.js';

/**
 * The refusing store.
 * @param engine the engine's name for the refusal text (`PostgreSQL`).
 */
export function unservedSwitchStore(engine: string): SwitchStore {
  const refuse = (): Promise<never> => Promise.reject(new ApiError('service_unavailable', `kill switches are not served on ${engine} yet`, {}, { 'Retry-After': '60' }));
  return { get: refuse, list: refuse, set: refuse, clear: refuse };
}
