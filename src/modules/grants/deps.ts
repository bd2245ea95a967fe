/**
 * What the grants' services run on (a subset of the app's `Deps`): their own file so the service
 * and the renewal code share it without importing each other.
 */
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../../platform/config.js';
import type { Catalog } from '../calls/catalog.js';
import type { Groups } from '../identity/groups.js';
import type { GrantStore } from './store.js';

/**
 * What the grants service runs on: the store, the clock, the groups and the provider catalog (the
 * terms name them), and the settings of approvals (`pendingGrantTtlS`: how long an L3 grant waits,
 * and the longest life of an approval's signature; `clockSkewS`; `policiesDir` holds
 * `approvers.json`).
 */
export interface GrantDeps {
  clock: Clock;
  groups: Groups;
  catalog: Catalog;
  config: Pick<Config, 'pendingGrantTtlS' | 'clockSkewS' | 'policiesDir'>;
  stores: { grants: GrantStore };
}
