/**
 * The in-memory grant index the decision path reads (`GrantSource`): every live grant in memory,
 * refreshed through the grants' change sequence (`platform/db/change-sequence.ts`).
 */
import type { Statement } from 'better-sqlite3';
import type { ActionLevel } from '../../providers/contract.js';
import type { Clock } from '../../platform/clock.js';
import type { Db } from '../../platform/db/open.js';
import { sqliteChangeSequence, type ChangeSequence } from '../../platform/db/change-sequence.js';
import type { GrantSource, GrantStatus, GrantView, RevokedGrant } from './types.js';

const EMPTY: readonly GrantView[] = Object.freeze([]);

/** A `grants` row with its count of valid approvals, as the store loads it. */
export interface LoadedRow {
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

/**
 * Where a {@link GrantIndex} reads on an engine without synchronous reads (PostgreSQL), when the
 * grants' change sequence moved ({@link GrantIndex.applyHead}). Rows as {@link LoadedRow}, times
 * as numbers.
 */
export interface AsyncGrantRows {
  /** `grant_changes` rows after `seq`, in seq order. */
  changesSince(seq: number): Promise<{ seq: number; grantId: string }[]>;
  /** The grant with this id (any status) and, when revoked, its revocation. */
  one(id: string): Promise<(LoadedRow & { revoked: RevokedGrant | null }) | undefined>;
  /** Every `active` or `pending_approval` grant. */
  live(): Promise<LoadedRow[]>;
  /** The most recently revoked grant of each (group, provider). */
  lastRevokedEach(): Promise<(RevokedGrant & { group: string; provider: string })[]>;
}

const COLUMNS = `
  g.id, g."group", g.provider, g.level, g.allowed_actions AS allowedActions,
  g.denied_actions AS deniedActions, g.resources, g.status, g.activated_at AS activatedAt,
  g.expires_at AS expiresAt, g.pending_expires_at AS pendingExpiresAt,
  (SELECT COUNT(*) FROM grant_approvals a
    WHERE a.grant_id = g.id AND a.grant_digest = g.digest AND a.decision = 'approve') AS approvals`;

/**
 * `GrantSource` over SQLite: every `active` or `pending_approval` grant, indexed in memory by
 * group then provider.
 *
 * Cost per {@link candidates} call: one read of the grants' change sequence, `MAX(seq)` of
 * `grant_changes` (a log appended by triggers on every write to `grants`/`grant_approvals`, from
 * any connection or process), and two Map lookups. When the log moved, only the grants it lists
 * are re-read and swapped in (copy-on-write lists, so arrays already handed out never change); a
 * reader more than the log's 1000 kept rows behind reloads everything. So a revocation made by
 * `broker grants revoke` in another process is seen by the very next lookup. Pending grants past
 * their approval deadline leave the index at that instant (no SQL). Inside a transaction on this
 * connection the candidates are read from the table and the index is left as it is (what the
 * transaction wrote may still roll back).
 *
 * Active grants past `expiresAt` stay in the index: the decision path compares `expiresAt` with
 * its clock and answers `capability_expired` (decision step 6).
 */
export class GrantIndex implements GrantSource {
  private readonly changes!: ChangeSequence;
  private readonly changesStmt!: Statement<[number], { seq: number; grantId: string }>;
  private readonly loadAllStmt!: Statement<[], LoadedRow>;
  private readonly loadOneStmt!: Statement<[string], LoadedRow>;
  private readonly loadCandidatesStmt!: Statement<[string, string], LoadedRow>;
  private readonly lastRevokedStmt!: Statement<[string, string], RevokedGrant>;
  /** The rows of an engine read asynchronously; undefined on SQLite. */
  private readonly rows?: AsyncGrantRows;
  /** On an engine read asynchronously: the last revoked grant of each `group\nprovider`. */
  private readonly revoked = new Map<string, RevokedGrant>();
  /** The catch-up in progress or last made by {@link applyHead} (one at a time). */
  private catching: Promise<void> = Promise.resolve();
  /** The last change seq applied; -1 before the first load. */
  private seen = -1;
  private index = new Map<string, Map<string, readonly GrantView[]>>();
  private readonly views = new Map<string, GrantView>();
  /** Approval deadlines (Unix ms) of the pending grants in the index. */
  private readonly pending = new Map<string, number>();
  private nextPendingDeadline = Infinity;

  /**
   * @param db the SQLite database (each lookup reads the change sequence itself), or the rows of
   *   an engine read asynchronously: then the caller runs {@link applyHead} with the head it read
   *   before each request's lookups, and lookups answer from memory as of that head.
   */
  constructor(
    db: Db | AsyncGrantRows,
    private readonly clock: Clock,
  ) {
    if (!('sqlite' in db)) {
      this.rows = db;
      return;
    }
    this.changes = sqliteChangeSequence(db, 'SELECT MAX(seq) FROM grant_changes');
    this.changesStmt = db.sqlite.prepare('SELECT seq, grant_id AS grantId FROM grant_changes WHERE seq > ? ORDER BY seq') as Statement<[number], { seq: number; grantId: string }>;
    this.loadAllStmt = db.sqlite.prepare(`SELECT ${COLUMNS} FROM grants g WHERE g.status IN ('active', 'pending_approval')`) as Statement<[], LoadedRow>;
    this.loadOneStmt = db.sqlite.prepare(`SELECT ${COLUMNS} FROM grants g WHERE g.id = ?`) as Statement<[string], LoadedRow>;
    this.loadCandidatesStmt = db.sqlite.prepare(
      `SELECT ${COLUMNS} FROM grants g WHERE g."group" = ? AND g.provider = ? AND g.status IN ('active', 'pending_approval') ORDER BY g.rowid`,
    ) as Statement<[string, string], LoadedRow>;
    this.lastRevokedStmt = db.sqlite.prepare(
      `SELECT id, revoked_at AS revokedAt, revoked_by AS revokedBy, revoke_reason AS reason FROM grants
       WHERE "group" = ? AND provider = ? AND status = 'revoked' ORDER BY revoked_at DESC, id DESC LIMIT 1`,
    ) as Statement<[string, string], RevokedGrant>;
  }

  /**
   * Grants of `group` for `provider` with status `active` (expired ones included, see the class
   * note) or `pending_approval` (before their approval deadline). O(1) plus one tiny read.
   * The returned array and views are frozen and shared.
   */
  candidates(group: string, provider: string): readonly GrantView[] {
    if (this.rows) {
      if (this.seen < 0) throw new Error('grant index not loaded: applyHead must run before a lookup');
      if (this.clock.now() >= this.nextPendingDeadline) this.dropLapsedPending();
    } else {
      if (this.changes.inTransaction()) return this.candidatesInTransaction(group, provider);
      this.refresh();
    }
    return this.index.get(group)?.get(provider) ?? EMPTY;
  }

  /** {@link candidates} straight from `grants`, for a caller inside a transaction (the index is left as it is). */
  private candidatesInTransaction(group: string, provider: string): readonly GrantView[] {
    const now = this.clock.now();
    const out: GrantView[] = [];
    for (const row of this.loadCandidatesStmt.iterate(group, provider)) if (this.belongs(row, now)) out.push(toView(row));
    return Object.freeze(out);
  }

  /**
   * The most recently revoked grant of `group` for `provider`, or null: one read by the
   * `(group, provider)` index, made only when a call is refused `no_capability`.
   */
  lastRevoked(group: string, provider: string): RevokedGrant | null {
    if (this.rows) return this.revoked.get(`${group}\n${provider}`) ?? null;
    return this.lastRevokedStmt.get(group, provider) ?? null;
  }

  /**
   * Brings the index up to the grants' change sequence's head `head` (`MAX(grant_changes.seq)`,
   * read by the caller before the request's lookups): re-reads the grants changed since, or
   * everything when the log no longer reaches back. Catch-ups run one at a time. A no-op on
   * SQLite, whose lookups read the head themselves.
   * @throws (rejects) the engine's error when the rows cannot be read (the caller fails closed).
   */
  applyHead(head: number): Promise<void> {
    const rows = this.rows;
    if (!rows) return Promise.resolve();
    const next = this.catching.catch(() => undefined).then(async () => {
      if (this.seen >= 0 && head <= this.seen) return;
      const changes = this.seen < 0 ? [] : await rows.changesSince(this.seen);
      if (this.seen < 0 || changes.length === 0 || changes[0]!.seq !== this.seen + 1) {
        const [live, revoked] = await Promise.all([rows.live(), rows.lastRevokedEach()]);
        this.revoked.clear();
        for (const r of revoked) this.revoked.set(`${r.group}\n${r.provider}`, { id: r.id, revokedAt: r.revokedAt, revokedBy: r.revokedBy, reason: r.reason });
        this.reloadAll(Math.max(head, 0), live);
        return;
      }
      const ids = [...new Set(changes.map((c) => c.grantId))];
      const loaded = await Promise.all(ids.map((id) => rows.one(id)));
      const now = this.clock.now();
      ids.forEach((id, i) => {
        this.remove(id);
        const row = loaded[i];
        if (row?.revoked) {
          const k = `${row.group}\n${row.provider}`;
          const prev = this.revoked.get(k);
          if (!prev || (row.revoked.revokedAt ?? 0) >= (prev.revokedAt ?? 0)) this.revoked.set(k, row.revoked);
        }
        if (row && this.belongs(row, now)) this.add(row);
      });
      this.seen = changes[changes.length - 1]!.seq;
    });
    this.catching = next;
    return next;
  }

  /** Number of grants in the index (active and pending). */
  get size(): number {
    return this.views.size;
  }

  /** Catches up with the change sequence when its head moved, then drops lapsed pending grants. */
  private refresh(): void {
    const head = this.changes.head();
    if (head !== this.seen) this.catchUp(head);
    if (this.clock.now() >= this.nextPendingDeadline) this.dropLapsedPending();
  }

  private catchUp(head: number): void {
    if (this.seen < 0 || head < this.seen) return this.reloadAll(head);
    const changes = this.changesStmt.all(this.seen);
    if (changes.length === 0 || changes[0]!.seq !== this.seen + 1) return this.reloadAll(head);
    const now = this.clock.now();
    for (const id of new Set(changes.map((c) => c.grantId))) {
      this.remove(id);
      const row = this.loadOneStmt.get(id);
      if (row && this.belongs(row, now)) this.add(row);
    }
    this.seen = changes[changes.length - 1]!.seq;
  }

  private reloadAll(head: number, rows: Iterable<LoadedRow> = this.loadAllStmt.iterate()): void {
    const now = this.clock.now();
    const index = new Map<string, Map<string, GrantView[]>>();
    this.views.clear();
    this.pending.clear();
    this.nextPendingDeadline = Infinity;
    for (const row of rows) {
      if (!this.belongs(row, now)) continue;
      const view = this.track(row);
      let byProvider = index.get(row.group);
      if (!byProvider) index.set(row.group, (byProvider = new Map()));
      const list = byProvider.get(row.provider);
      if (list) list.push(view);
      else byProvider.set(row.provider, [view]);
    }
    for (const byProvider of index.values()) for (const list of byProvider.values()) Object.freeze(list);
    this.index = index;
    this.seen = head;
  }

  private belongs(row: LoadedRow, now: number): boolean {
    if (row.status === 'active') return true;
    return row.status === 'pending_approval' && (row.pendingExpiresAt === null || now < row.pendingExpiresAt);
  }

  /** Records a view and its pending deadline; returns the view. */
  private track(row: LoadedRow): GrantView {
    const view = toView(row);
    this.views.set(row.id, view);
    if (row.status === 'pending_approval' && row.pendingExpiresAt !== null) {
      this.pending.set(row.id, row.pendingExpiresAt);
      if (row.pendingExpiresAt < this.nextPendingDeadline) this.nextPendingDeadline = row.pendingExpiresAt;
    }
    return view;
  }

  private add(row: LoadedRow): void {
    const view = this.track(row);
    let byProvider = this.index.get(row.group);
    if (!byProvider) this.index.set(row.group, (byProvider = new Map()));
    byProvider.set(row.provider, Object.freeze([...(byProvider.get(row.provider) ?? []), view]));
  }

  private remove(id: string): void {
    const view = this.views.get(id);
    if (!view) return;
    this.views.delete(id);
    this.pending.delete(id);
    const byProvider = this.index.get(view.group)!;
    const rest = byProvider.get(view.provider)!.filter((v) => v.id !== id);
    if (rest.length > 0) byProvider.set(view.provider, Object.freeze(rest));
    else byProvider.delete(view.provider);
  }

  private dropLapsedPending(): void {
    const now = this.clock.now();
    for (const [id, deadline] of [...this.pending]) if (now >= deadline) this.remove(id);
    this.nextPendingDeadline = Math.min(Infinity, ...this.pending.values());
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
