/**
 * A {@link RunStore} for an engine that has no implementation of it yet: every operation rejects
 * with 503 `service_unavailable` and reads or writes nothing (fail closed), so no runner is ever
 * spawned without its claim row.
 */
import { ApiError } from '../../platform/http/problem.js';
import type { RunStore } from './store.js';

/**
 * The refusing store.
 * @param engine the engine's name for the refusal text (`PostgreSQL`).
 */
export function unservedRunStore(engine: string): RunStore {
  const refuse = (): Promise<never> => Promise.reject(new ApiError('service_unavailable', `agent runs are not served on ${engine} yet`, {}, { 'Retry-After': '60' }));
  return { claim: refuse, update: refuse, find: refuse, withStatus: refuse, ofTask: refuse, claimedKeys: refuse, list: refuse, counts: refuse };
}
