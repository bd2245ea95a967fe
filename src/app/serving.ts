/**
 * The instance lease of a serving process (`runBroker`, what `broker serve` runs): taken before
 * anything is served, renewed on a timer, released at a graceful stop. Each renewal also runs
 * crash recovery, so the running calls of an instance that died become `unknown_outcome` once
 * its lease expires, while this process keeps serving (replicas); see `lease.ts`.
 */
import { recoverInterruptedCalls } from '../modules/calls/recovery.js';
import { expireHeldCalls } from '../modules/calls/approval/service.js';
import type { Deps } from './deps.js';
import { acquireLease, AlreadyServedError, releaseLease, renewLease, setLeaseUrl, type LeaseHolder } from '../platform/lease/lease.js';

/** A serving process's lease, held from {@link startInstance} until {@link ServingInstance.release}. */
export interface ServingInstance {
  /** The instance id (`deps.instanceId`). */
  readonly id: string;
  /** Records the origin the process listens on in its lease row (for a second `serve`'s message); a failed write is logged. */
  listening(url: string): void;
  /**
   * Stops renewing and deletes the lease row. Call it after the requests in flight have ended
   * (a call still running then is recovered as `unknown_outcome` by the next process). Idempotent;
   * a failed delete is logged and the lease simply runs out.
   */
  release(): void;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Takes this process's lease (`deps.instanceId`, `BROKER_LEASE_TTL_MS`), then recovers the calls
 * of instances without a live lease, then renews every third of the TTL and recovers again after
 * each renewal. A renewal that fails (a busy or full disk) is logged and retried at the next tick.
 * @param onLost called (once, renewal stopped) when the lease had run out and the database is now
 *   served by another instance of a single-server engine: the process must stop serving.
 * @throws (rejects) AlreadyServedError when a single-server database has a live lease (nothing
 *   written); ApiError 503 `audit_unavailable` when recovery cannot be recorded (the lease is released).
 */
export async function startInstance(deps: Pick<Deps, 'db' | 'stores' | 'clock' | 'logger' | 'config' | 'instanceId'>, onLost: (err: AlreadyServedError) => void): Promise<ServingInstance> {
  const me: LeaseHolder = { id: deps.instanceId, ttlMs: deps.config.leaseTtlMs };
  acquireLease(deps.db, me, deps.clock.now());
  try {
    await recoverInterruptedCalls(deps, me.id);
  } catch (err) {
    releaseLease(deps.db, me.id);
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    try {
      releaseLease(deps.db, me.id);
    } catch (err) {
      deps.logger.warn({ instance: me.id, err: message(err) }, 'could not release the instance lease; it runs out by itself');
    }
  };
  const tick = () => {
    const now = deps.clock.now();
    try {
      if (!renewLease(deps.db, me, now)) {
        deps.logger.error(
          { instance: me.id, lease_ttl_ms: me.ttlMs },
          'this broker was stalled longer than its lease (BROKER_LEASE_TTL_MS) and its calls then running were marked unknown_outcome; taking a new lease',
        );
        acquireLease(deps.db, me, now);
      }
    } catch (err) {
      if (err instanceof AlreadyServedError) {
        clearInterval(timer);
        timer = undefined;
        onLost(err);
        return;
      }
      deps.logger.warn({ instance: me.id, err: message(err) }, 'instance lease renewal failed; retrying');
      return;
    }
    recoverInterruptedCalls(deps, me.id).catch((err: unknown) => deps.logger.warn({ err: message(err) }, 'crash recovery of expired instances failed; retrying'));
    // Held calls past their approval deadline become `expired` (audited), so their keys replay that.
    expireHeldCalls(deps).catch((err: unknown) => deps.logger.warn({ err: message(err) }, 'expiring held calls failed; retrying'));
  };
  timer = setInterval(tick, Math.max(1, Math.floor(me.ttlMs / 3)));
  timer.unref();
  return {
    id: me.id,
    listening: (url) => {
      try {
        setLeaseUrl(deps.db, me.id, url);
      } catch (err) {
        deps.logger.warn({ instance: me.id, err: message(err) }, 'could not record the URL in the instance lease');
      }
    },
    release,
  };
}
