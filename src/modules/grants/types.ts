/**
 * The grant shape the decision path reads. The grants module (store, routes, approvals) produces
 * it; the call path consumes it through {@link GrantSource}, never through SQL of its own.
 */
import type { ActionLevel } from '../../providers/contract.js';

/** Grant lifecycle: L1/L2 grants start `active`, L3 grants `pending_approval` until two approvals. */
export type GrantStatus = 'pending_approval' | 'active' | 'rejected' | 'expired' | 'revoked';

/** A grant as the decision path sees it. Times are Unix ms. */
export interface GrantView {
  id: string;
  group: string;
  provider: string;
  level: ActionLevel;
  /** Action id patterns (a trailing `*` matches any suffix); null = every action of the provider at or below `level`. */
  allowedActions: readonly string[] | null;
  /** Same syntax; checked before the allow list (deny-wins). */
  deniedActions: readonly string[] | null;
  /** Resource patterns such as `acme/*` or `acme/api`; null = any resource. */
  resources: readonly string[] | null;
  status: GrantStatus;
  activatedAt: number | null;
  /** The exact instant the grant stops working; null = no expiry (L1 only). */
  expiresAt: number | null;
  /** Valid approvals counted toward the two-man rule (L3 needs 2, from two groups). */
  approvals: number;
}

/** A revoked grant as a refusal names it. Times are Unix ms. */
export interface RevokedGrant {
  id: string;
  revokedAt: number;
  /** The principal that revoked it (`main`, `operator:<subject>`), when recorded. */
  revokedBy: string | null;
  /** The reason given, when one was. */
  reason: string | null;
}

/** Where the decision path gets grants from. */
export interface GrantSource {
  /**
   * Grants of `group` for `provider` that can matter to a decision (status `active` or
   * `pending_approval`), served from memory and reloaded when any grant changes, in this process
   * or another one on the same database (e.g. `broker grants revoke` from the CLI).
   */
  candidates(group: string, provider: string): readonly GrantView[];
  /**
   * The most recently revoked grant of `group` for `provider`, or null. One read of the database,
   * so the decision path asks it only on a refusal (403 `no_capability`), never for an allowed call.
   */
  lastRevoked?(group: string, provider: string): RevokedGrant | null;
}
