/**
 * The check for grants nearing expiry: an active grant whose expiry is within
 * `expiring_within_s` gets one `grant.expiring` audit row (`{group, provider, level, expires_at}`
 * on the grant's id), which the outbox carries to the webhooks like every other row. The store
 * appends a grant's row only when the trail has none (`WebhookStore.recordExpiring`), so each
 * grant is announced once, however many replicas check.
 */
import type { ActivityInput } from '../../platform/audit/trail.js';
import type { Clock } from '../../platform/clock.js';
import type { GrantStore } from '../grants/store.js';
import { GRANT_EXPIRING_KIND } from './events.js';
import type { WebhookStore } from './store.js';

/** What the check runs on: the grants (read), the deliveries store (appends), the clock, the window in seconds. */
export interface ExpiringDeps {
  grants: GrantStore;
  store: WebhookStore;
  clock: Clock;
  withinS: number;
}

/** Active grants read per page. */
const PAGE = 500;

/**
 * One check: pages through the active grants, and appends `grant.expiring` for those expiring
 * within `withinS` from now that have none yet.
 * @returns the grant ids announced now.
 */
export async function checkExpiring(deps: ExpiringDeps): Promise<string[]> {
  const now = deps.clock.now();
  const horizon = now + deps.withinS * 1000;
  const rows: ActivityInput[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await deps.grants.list({ status: 'active', limit: PAGE, ...(after ? { after } : {}) }, now);
    for (const { row } of page.grants) {
      if (row.expiresAt === null || row.expiresAt <= now || row.expiresAt > horizon) continue;
      rows.push({ actor: 'system', kind: GRANT_EXPIRING_KIND, subject: row.id, detail: { group: row.group, provider: row.provider, level: row.level, expires_at: new Date(row.expiresAt).toISOString() } });
    }
    if (!page.more) break;
    after = page.grants[page.grants.length - 1]!.row.id;
  }
  return rows.length === 0 ? [] : deps.store.recordExpiring(rows);
}
