/**
 * Who may do what with access requests. The agent groups ask; those who may create grants
 * (`GRANTORS`: operators and `main`) decide, except on their own request (`main` never decides
 * main's; see `requireNotRequester`); those who read grants read requests, and a group reads its
 * own requests.
 */
import type { Access } from '../../platform/http/guard.js';
import type { Groups } from '../identity/groups.js';
import { GRANT_READERS, GRANTORS } from '../grants/access.js';

/** Who approves and denies: the grants' `GRANTORS`. */
export const REQUEST_DECIDERS: Access = GRANTORS;

/** Who lists requests: the grants' readers (operators, auditors). */
export const REQUEST_READERS: Access = GRANT_READERS;

/** Who asks: every agent group of `policies/groups.json`, never a token. */
export function requesters(groups: Groups): Access {
  return { groups: [...groups.keys()] };
}

/** Who reads one request: the readers, and every agent group (its own requests only, checked by the service). */
export function requestViewers(groups: Groups): Access {
  return { roles: REQUEST_READERS.roles ?? [], groups: [...groups.keys()] };
}
