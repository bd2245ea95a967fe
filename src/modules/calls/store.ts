/**
 * SQL for `ext_calls` (see `schema.ts`): prepared once per connection, so the hot path pays one
 * statement execution per step. Reads are usable from the CLI; writes run inside the caller's
 * transaction (the group commit) together with their audit rows.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../platform/db/open.js';

/** Where a call is: `running` until its outcome is stored; `unknown_outcome` after a crash. */
export type CallStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'unknown_outcome';

/** Every call status, for validating `--status` and `?status=`. */
export const CALL_STATUSES = ['running', 'succeeded', 'failed', 'timed_out', 'unknown_outcome'] as const satisfies readonly CallStatus[];

/** One `ext_calls` row. Times are Unix ms; `response` and `receipt` are JSON text. */
export interface CallRow {
  group: string;
  requestId: string;
  fingerprint: string;
  action: string;
  level: number;
  resource: string;
  summary: string;
  taskId: string | null;
  grantId: string;
  status: CallStatus;
  httpStatus: number | null;
  response: string | null;
  receipt: string;
  attempts: number;
  createdAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  /** The broker instance (`broker_instances.id`) that claimed the call; null on rows from before leases. */
  instanceId: string | null;
}

/** What a claim inserts (status `running`), `instanceId` being the claiming process's. */
export type NewCall = Pick<CallRow, 'group' | 'requestId' | 'fingerprint' | 'action' | 'level' | 'resource' | 'summary' | 'taskId' | 'grantId' | 'receipt' | 'createdAt' | 'instanceId'>;

/** What ending a call stores. */
export type CallEnd = Pick<CallRow, 'status' | 'httpStatus' | 'response' | 'attempts' | 'finishedAt' | 'durationMs'>;

const COLUMNS = `"group", request_id AS requestId, fingerprint, action, level, resource, summary, task_id AS taskId,
  grant_id AS grantId, status, http_status AS httpStatus, response, receipt, attempts, created_at AS createdAt,
  finished_at AS finishedAt, duration_ms AS durationMs, instance_id AS instanceId`;

/**
 * Filters for {@link CallStore.list}; all optional. `before` keeps calls created before it
 * (exclusive); `after` keeps the calls that follow that call in the list's order (keyset paging).
 */
export interface CallFilter {
  group?: string;
  status?: CallStatus;
  taskId?: string;
  before?: number;
  after?: { createdAt: number; requestId: string; group: string };
  limit?: number;
}

/** Prepared statements over `ext_calls` for one connection. */
export class CallStore {
  private readonly findStmt: Statement<[string, string], CallRow>;
  private readonly insertStmt: Statement<[NewCall]>;
  private readonly endStmt: Statement<[CallEnd & { group: string; requestId: string }]>;

  constructor(private readonly db: Db) {
    const s = db.sqlite;
    this.findStmt = s.prepare(`SELECT ${COLUMNS} FROM ext_calls WHERE "group" = ? AND request_id = ?`);
    this.insertStmt = s.prepare(
      `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, receipt, created_at, instance_id)
       VALUES (@group, @requestId, @fingerprint, @action, @level, @resource, @summary, @taskId, @grantId, 'running', @receipt, @createdAt, @instanceId)`,
    );
    this.endStmt = s.prepare(
      `UPDATE ext_calls SET status = @status, http_status = @httpStatus, response = @response,
         attempts = @attempts, finished_at = @finishedAt, duration_ms = @durationMs
       WHERE "group" = @group AND request_id = @requestId AND status = 'running'`,
    );
  }

  /** The call with this key, or undefined. */
  find(group: string, requestId: string): CallRow | undefined {
    return this.findStmt.get(group, requestId);
  }

  /**
   * Inserts a `running` call (the claim).
   * @throws the SQLite constraint error (`SQLITE_CONSTRAINT_PRIMARYKEY`) when the key is taken.
   */
  insertRunning(call: NewCall): void {
    this.insertStmt.run(call);
  }

  /**
   * Stores a running call's outcome.
   * @throws Error when the call is not `running` any more (ended elsewhere), so its transaction
   *   rolls back instead of overwriting an outcome.
   */
  end(group: string, requestId: string, end: CallEnd): void {
    if (this.endStmt.run({ ...end, group, requestId }).changes !== 1) throw new Error(`call ${group}/${requestId} is not running`);
  }

  /**
   * Calls matching `filter`, newest first (`created_at DESC, request_id, "group"`), at most `limit`
   * (default 100, max 1001: a page of 1000 and the row that says more follow).
   */
  list(filter: CallFilter = {}): CallRow[] {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (filter.group !== undefined) (where.push('"group" = @group'), (args['group'] = filter.group));
    if (filter.status !== undefined) (where.push('status = @status'), (args['status'] = filter.status));
    if (filter.taskId !== undefined) (where.push('task_id = @taskId'), (args['taskId'] = filter.taskId));
    if (filter.before !== undefined) (where.push('created_at < @before'), (args['before'] = filter.before));
    if (filter.after !== undefined) {
      where.push('(created_at < @afterAt OR (created_at = @afterAt AND (request_id > @afterId OR (request_id = @afterId AND "group" > @afterGroup))))');
      Object.assign(args, { afterAt: filter.after.createdAt, afterId: filter.after.requestId, afterGroup: filter.after.group });
    }
    args['limit'] = Math.min(Math.max(filter.limit ?? 100, 1), 1001);
    const sql = `SELECT ${COLUMNS} FROM ext_calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, request_id, "group" LIMIT @limit`;
    return this.db.sqlite.prepare(sql).all(args) as CallRow[];
  }
}

/** True for the SQLite error a second claim of the same (group, request id) raises. */
export function isDuplicateClaim(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
