/**
 * One call as the call path carries it: the verified request (`CallSubmission`) and, once every
 * decision step passed, the allowed call ready to claim or hold (`Allowed`). Their own file so
 * the call service and the per-call approval's hold (`approval/hold.ts`) share them without
 * importing each other.
 */
import type { Logger } from '../../platform/log.js';
import type { GrantView } from '../grants/types.js';
import type { PerCallRule } from './approval/policy.js';
import type { Receipt } from './decision/receipt.js';
import type { Shape } from './shape.js';

/** One verified request: the signing group and key, its Idempotency-Key and the raw body bytes. */
export interface CallSubmission {
  group: string;
  keyid: string;
  requestId: string;
  rawBody: Uint8Array;
  log: Logger;
  /** The request path, for the problem `instance`. */
  instance?: string;
  /** SHA-256 of `rawBody` when step 1 already computed it (the `Content-Digest` check); else it is hashed here. */
  bodySha256?: Buffer | null;
  /** A held call being decided again as its approval arrives (`approval/service.ts`): step 3 and the hold are passed. */
  approved?: boolean;
}

/** An allowed call, ready to claim: its receipt so far, shape, grant, body fingerprint and key. */
export interface Allowed {
  kind: 'allowed';
  receipt: Receipt;
  shape: Shape;
  grant: GrantView;
  /** SHA-256 hex of the body. */
  fingerprint: string;
  /** The in-memory key (`CallKeys.of`). */
  key: string;
  /** The group's pending calls before this one (step 4). */
  pending: number;
  /** Whether this call is its provider's half-open probe (the `circuit` step). */
  probe: boolean;
  /** Set when the action needs per-call approval: the call is held, not claimed. */
  hold?: PerCallRule;
}
