/**
 * The instance lease of a serving process (`runBroker`, what `broker serve` runs): taken before
 * anything is served, renewed on a timer, released at a graceful stop. Each renewal also runs
 * crash recovery, so the running calls of an instance that died become `unknown_outcome` once
 * its lease expires, while this process keeps serving (replicas); see `lease.ts`.
 */
import { recoverInterruptedCalls } from '../modules/calls/recovery.js';
import { expireHeldCalls } from '../modules/calls/approval/service.js';
import type { Deps } from './deps.js';
import type { Database } from '../platform/db/database.js';
import { acquireLease, AlreadyServedError, releaseLease, renewLease, setLeaseUrl, type LeaseHolder } from '../platform/lease/lease.js';
import { acquireLeasePg, releaseLeasePg, renewLeasePg, setLeaseUrlPg } from '../platform/lease/lease.pg.js';

/**
 * The instance-lease operations on the engine served: SQLite's (`lease.ts`, one server per file,
 * synchronous) or PostgreSQL's (`lease.pg.ts`, one lease per replica).
 */
interface Leases {
  acquire(me: LeaseHolder, now: number): Promise<unknown>;
  renew(me: LeaseHolder, now: number): Promise<boolean>;
  release(id: string): Promise<void>;
  setUrl(id: string, url: string): Promise<void>;
}

function leasesOn(database: Database): Leases {
  if (database.engine === 'postgres') {
    const { pg } = database;
    return {
      acquire: (me, now) => acquireLeasePg(pg, me, now),
      renew: (me, now) => renewLeasePg(pg, me, now),
      release: (id) => releaseLeasePg(pg, id),
      setUrl: (id, url) => setLeaseUrlPg(pg, id, url),
    };
  }
  const { db } = database;
  return {
    acquire: async (me, now) => acquireLease(db, me, now),
    renew: async (me, now) => renewLease(db, me, now),
    release: async (id) => releaseLease(db, id),
    setUrl: async (id, url) => setLeaseUrl(db, id, url),
  };
}

/** A serving process's lease, held from {@link startInstance} until {@link ServingInstance.release}. */
export interface ServingInstance {
  /** The instance id (`deps.instanceId`). */
  readonly id: string;
  /** Records the origin the process listens on in its lease row (for a second `serve`'s message); a failed write is logged. */
  listening(url: string): void;
  /**
   * Stops renewing and deletes the lease row. Call it after the requests in flight have ended
   * (a call still running then is recovered as `unknown_outcome` by the next process). Idempotent;
   * a failed delete is logged and the lease simply runs out. Resolves once the row is deleted
   * (at once on SQLite; after a renewal in progress and the delete on PostgreSQL).
   */
  release(): Promise<void>;
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
export async function startInstance(deps: Pick<Deps, 'database' | 'stores' | 'clock' | 'logger' | 'config' | 'instanceId'>, onLost: (err: AlreadyServedError) => void): Promise<ServingInstance> {
  const me: LeaseHolder = { id: deps.instanceId, ttlMs: deps.config.leaseTtlMs };
  const leases = leasesOn(deps.database);
  await leases.acquire(me, deps.clock.now());
  try {
    await recoverInterruptedCalls(deps, me.id);
  } catch (err) {
    await leases.release(me.id).catch(() => undefined);
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  /** The renewal (and recovery) in progress: ticks never overlap, and release waits for it. */
  let busy: Promise<void> | null = null;
  const release = () => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    const drop = () =>
      leases.release(me.id).catch((err: unknown) => deps.logger.warn({ instance: me.id, err: message(err) }, 'could not release the instance lease; it runs out by itself'));
    // Synchronous on SQLite when no renewal runs (the row is gone when this returns).
    return busy === null ? drop() : busy.then(drop, drop);
  };
  const renew = async () => {
    const now = deps.clock.now();
    try {
      if (!(await leases.renew(me, now))) {
        deps.logger.error(
          { instance: me.id, lease_ttl_ms: me.ttlMs },
          'this broker was stalled longer than its lease (BROKER_LEASE_TTL_MS) and its calls then running were marked unknown_outcome; taking a new lease',
        );
        await leases.acquire(me, now);
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
    await recoverInterruptedCalls(deps, me.id).then(
      () => undefined,
      (err: unknown) => deps.logger.warn({ err: message(err) }, 'crash recovery of expired instances failed; retrying'),
    );
    // Held calls past their approval deadline become `expired` (audited), so their keys replay that.
    await expireHeldCalls(deps).then(
      () => undefined,
      (err: unknown) => deps.logger.warn({ err: message(err) }, 'expiring held calls failed; retrying'),
    );
  };
  const tick = () => {
    if (busy !== null || timer === undefined) return;
    busy = renew().finally(() => (busy = null));
  };
  timer = setInterval(tick, Math.max(1, Math.floor(me.ttlMs / 3)));
  timer.unref();
  return {
    id: me.id,
    listening: (url) => {
      leases.setUrl(me.id, url).catch((err: unknown) => deps.logger.warn({ instance: me.id, err: message(err) }, 'could not record the URL in the instance lease'));
    },
    release: async () => {
      await release();
    },
  };
}
