/**
 * The in-memory grant index the decision path reads (issue 4: "grants cached in memory and
 * invalidated on change").
 */
import type { Statement } from 'better-sqlite3';
import type { ActionLevel } from '../catalog.js';
import type { Clock } from '../../clock.js';
import type { Db } from '../../db/open.js';
import type { GrantSource, GrantStatus, GrantView } from './types.js';

const EMPTY: readonly GrantView[] = Object.freeze([]);

/** A `grants` row joined with its count of valid approvals, as the store loads it. */
interface LoadedRow {
  id: string;
  group: string;
  provider: string;
  level: number;
  allowedActions: string | null;
  deniedActions: string | null;
  resources: string | null;
  status: string;
  activatedAt: number | null;
  expiresAt: number | null;
  pendingExpiresAt: number | null;
  approvals: number;
}

const LOAD_SQL = `
  SELECT g.id, g."group", g.provider, g.level, g.allowed_actions AS allowedActions,
         g.denied_actions AS deniedActions, g.resources, g.status, g.activated_at AS activatedAt,
         g.expires_at AS expiresAt, g.pending_expires_at AS pendingExpiresAt,
         (SELECT COUNT(*) FROM grant_approvals a
           WHERE a.grant_id = g.id AND a.grant_digest = g.digest AND a.decision = 'approve') AS approvals
    FROM grants g
   WHERE g.status IN ('active', 'pending_approval')`;

/**
 * `GrantSource` over SQLite: every `active` or `pending_approval` grant, indexed in memory by
 * group then provider.
 *
 * Cost per {@link candidates} call: one prepared single-row read of `grants_version` (bumped by
 * triggers on every write to `grants`/`grant_approvals`, from any connection or process) and two
 * Map lookups. The index is rebuilt from SQL only when the version moved, so a revocation made by
 * `broker grants revoke` in another process is seen by the very next lookup. Pending grants past
 * their approval deadline are dropped from the index at that instant (in-memory rebuild, no SQL).
 *
 * Active grants past `expiresAt` stay in the index: the decision path compares `expiresAt` with
 * its clock and answers `capability_expired` (issue 4, decision step 6).
 */
export class GrantStore implements GrantSource {
  private readonly versionStmt: Statement<[], number>;
  private readonly loadStmt: Statement<[], LoadedRow>;
  private version = -1;
  private rows: LoadedRow[] = [];
  private index = new Map<string, Map<string, GrantView[]>>();
  /** The earliest pending-approval deadline still in the index (Unix ms); Infinity when none. */
  private nextPendingDeadline = Infinity;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {
    this.versionStmt = db.sqlite.prepare('SELECT version FROM grants_version WHERE id = 1').pluck() as Statement<[], number>;
    this.loadStmt = db.sqlite.prepare(LOAD_SQL) as Statement<[], LoadedRow>;
  }

  /**
   * Grants of `group` for `provider` with status `active` (expired ones included, see the class
   * note) or `pending_approval` (before their approval deadline). O(1) plus one version read.
   * The returned array and views are shared and must not be mutated.
   */
  candidates(group: string, provider: string): readonly GrantView[] {
    this.refresh();
    return this.index.get(group)?.get(provider) ?? EMPTY;
  }

  /** Forces the next lookup to reload (after a write this process made outside a transaction). */
  invalidate(): void {
    this.version = -1;
  }

  /** Number of grants in the index (active and pending). */
  get size(): number {
    let n = 0;
    for (const byProvider of this.index.values()) for (const list of byProvider.values()) n += list.length;
    return n;
  }

  private refresh(): void {
    const version = this.versionStmt.get() ?? 0;
    if (version !== this.version) {
      this.rows = this.loadStmt.all();
      this.version = version;
      this.rebuild();
    } else if (this.clock.now() >= this.nextPendingDeadline) {
      this.rebuild();
    }
  }

  private rebuild(): void {
    const now = this.clock.now();
    const index = new Map<string, Map<string, GrantView[]>>();
    let nextDeadline = Infinity;
    for (const row of this.rows) {
      if (row.status === 'pending_approval' && row.pendingExpiresAt !== null) {
        if (now >= row.pendingExpiresAt) continue;
        if (row.pendingExpiresAt < nextDeadline) nextDeadline = row.pendingExpiresAt;
      }
      let byProvider = index.get(row.group);
      if (!byProvider) index.set(row.group, (byProvider = new Map()));
      let list = byProvider.get(row.provider);
      if (!list) byProvider.set(row.provider, (list = []));
      list.push(toView(row));
    }
    this.index = index;
    this.nextPendingDeadline = nextDeadline;
  }
}

function toView(row: LoadedRow): GrantView {
  return Object.freeze({
    id: row.id,
    group: row.group,
    provider: row.provider,
    level: row.level as ActionLevel,
    allowedActions: parseList(row.allowedActions),
    deniedActions: parseList(row.deniedActions),
    resources: parseList(row.resources),
    status: row.status as GrantStatus,
    activatedAt: row.activatedAt,
    expiresAt: row.expiresAt,
    approvals: row.approvals,
  });
}

function parseList(json: string | null): readonly string[] | null {
  return json === null ? null : Object.freeze(JSON.parse(json) as string[]);
}
