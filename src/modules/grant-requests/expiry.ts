/**
 * `broker serve`'s sweep of access requests nobody decided: their status already reads `expired`
 * from their deadline on (derived from the clock on every read); the sweep stores it and audits
 * `grant_request.expired`, so the trail says when each one lapsed.
 */
import type { Logger } from '../../platform/log.js';
import { expireGrantRequests, type GrantRequestDeps } from './service.js';

/** How often `serve` sweeps, in ms (and once at start-up). */
export const REQUEST_EXPIRY_INTERVAL_MS = 60_000;

/**
 * Starts the sweep: once now, then every {@link REQUEST_EXPIRY_INTERVAL_MS} (an unref'd timer, so
 * it never keeps the process alive; a sweep still running is not overlapped). A failed sweep is
 * logged at error and retried at the next tick; it never stops the server.
 * @returns stop(): no new sweeps.
 */
export function startGrantRequestExpiry(deps: Pick<GrantRequestDeps, 'stores'> & { logger: Logger }): () => void {
  let running = false;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = true;
    expireGrantRequests(deps)
      .then((n) => {
        if (n > 0) deps.logger.info({ expired: n }, 'grant requests expired');
      })
      .catch((err: unknown) => deps.logger.error({ err }, 'grant request expiry failed; retrying at the next tick'))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, REQUEST_EXPIRY_INTERVAL_MS);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
