/**
 * The storage floor of one L1 call, shared by (f) (`bench/floor-loop.ts`, in-process) and (g)
 * (the floor server in `bench/server.ts`): a bare better-sqlite3 connection on a temp file whose
 * tables and indexes are made by the committed migrations in `drizzle/` (run as plain SQL, not
 * through drizzle), with the broker's pragmas (WAL, `foreign_keys=ON`, `synchronous=FULL`,
 * `busy_timeout=5000`, as `src/platform/db/open.ts` sets them), writing per call exactly the rows
 * an L1 call of `bench.noop` writes:
 * - the claim: an `ext_calls` row (status `running`, the receipt's JSON text) and its
 *   `call.claimed` audit row;
 * - the outcome: the `UPDATE` of that row (status, HTTP status, the response's JSON text) and its
 *   `call.succeeded` audit row.
 * Each audit row's `detail` is the same canonical text the broker stores for such a call, and its
 * hash is `storedActivityHash` of `src/platform/audit/chain.ts` over the previous row's hash.
 * None of the broker's logic: no decision, no redaction, no canonicalisation of the detail (the
 * text is written out already canonical), no read of the chain's head per append (it is kept in
 * memory), no savepoint per write.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GENESIS_HASH, storedActivityHash } from '../src/platform/audit/chain.js';
import { packagePath } from '../src/platform/paths.js';

/** Opens a new floor database at `file` with the broker's pragmas and the migrations of `drizzle/` applied. */
export function openFloorDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = FULL');
  const dir = packagePath('drizzle');
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    for (const statement of fs.readFileSync(path.join(dir, name), 'utf8').split('--> statement-breakpoint')) {
      if (statement.trim()) db.exec(statement);
    }
  }
  return db;
}

/** The receipt's steps as the `call.claimed` row and the receipt JSON of a `bench.noop` call carry them. */
const STEPS = 'signature:pass request:pass idempotency:pass switch:pass backpressure:pass grant:pass expiry:pass level:pass deny_list:pass allow_list:pass resource:pass task:skip approval:skip provider:pass claim:pass';
const GRANT = 'grt_01M976VD1PY1HYRBSKTF0BYCC4';

/** The receipt's steps with their notes, as a `bench.noop` call's receipt holds them. */
const RECEIPT_STEPS = [
  ['signature', 'pass', 'call000:1'], ['request', 'pass', 'bench.noop on bench/noop'], ['idempotency', 'pass', 'new key'],
  ['switch', 'pass', 'no switch'], ['backpressure', 'pass', '0 pending, limit 5'], ['grant', 'pass', `${GRANT} (L1, active; 1 considered)`],
  ['expiry', 'pass', 'no expiry'], ['level', 'pass', 'L1 >= L1'], ['deny_list', 'pass', 'empty'], ['allow_list', 'pass', 'every action up to the level'],
  ['resource', 'pass', 'bench/noop (any resource)'], ['task', 'skip', 'L1 without task_id'], ['approval', 'skip', 'L1 grant'], ['provider', 'pass', 'bench'],
].map(([step, result, note]) => `{"step":"${step}","result":"${result}","note":"${note}"}`);

/** A `bench.noop` call's receipt JSON text, as the claim stores it (and the response embeds it, with the execute step). */
function receipt(group: string, requestId: string, ts: string, executed: boolean): string {
  const steps = [...RECEIPT_STEPS, '{"step":"claim","result":"pass"}'];
  if (executed) steps.push('{"step":"execute","result":"pass","note":"succeeded; 1 attempt(s)"}');
  return `{"request_id":"${requestId}","group":"${group}","action":"bench.noop","decided_at":"${ts}","decision":"allowed","code":null,"grant_id":"${GRANT}","task_id":null,"steps":[${steps.join(',')}]}`;
}

/** Writes the floor's rows; the chain head is kept in memory (the connection is the only writer). */
export class FloorWriter {
  private seq = 0;
  private prev = GENESIS_HASH;
  private readonly claimStmt: Database.Statement;
  private readonly endStmt: Database.Statement;
  private readonly auditStmt: Database.Statement;
  readonly begin: Database.Statement;
  readonly commit: Database.Statement;

  constructor(readonly db: Database.Database) {
    this.claimStmt = db.prepare(
      `INSERT INTO ext_calls ("group", request_id, fingerprint, action, level, resource, summary, task_id, grant_id, status, receipt, created_at, instance_id)
       VALUES (?, ?, ?, 'bench.noop', 1, 'bench/noop', 'noop on bench/noop', NULL, '${GRANT}', 'running', ?, ?, 'floor')`,
    );
    this.endStmt = db.prepare(
      `UPDATE ext_calls SET status = 'succeeded', http_status = 200, response = ?, attempts = 1, finished_at = ?, duration_ms = 0
       WHERE "group" = ? AND request_id = ? AND status = 'running'`,
    );
    this.auditStmt = db.prepare('INSERT INTO gov_activities (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
  }

  private audit(ts: string, actor: string, kind: string, subject: string, detail: string): void {
    this.seq += 1;
    const hash = storedActivityHash(this.prev, { seq: this.seq, ts, actor, kind, subject, detail });
    this.auditStmt.run(this.seq, ts, actor, kind, subject, detail, this.prev, hash);
    this.prev = hash;
  }

  /** The claim of call (`group`, `requestId`): its `running` row and its `call.claimed` audit row. */
  claim(group: string, requestId: string, fingerprint: string, nowMs: number): void {
    const ts = new Date(nowMs).toISOString();
    this.claimStmt.run(group, requestId, fingerprint, receipt(group, requestId, ts, false), nowMs);
    const detail = `{"action":"bench.noop","grant_id":"${GRANT}","resource":"bench/noop","steps":"${STEPS}","summary":"noop on bench/noop","task_id":null}`;
    this.audit(ts, group, 'call.claimed', `call:${group}:${requestId}`, detail);
  }

  /** The outcome of the call: the row's update and its `call.succeeded` audit row. */
  end(group: string, requestId: string, nowMs: number): void {
    const ts = new Date(nowMs).toISOString();
    const response = `{"request_id":"${requestId}","status":"succeeded","action":"bench.noop","result":{"ok":true},"receipt":${receipt(group, requestId, ts, true)},"duration_ms":0}`;
    if (this.endStmt.run(response, nowMs, group, requestId).changes !== 1) throw new Error(`floor: ${group}/${requestId} is not running`);
    this.audit(ts, group, 'call.succeeded', `call:${group}:${requestId}`, '{"action":"bench.noop","attempts":1,"duration_ms":0,"http_status":200}');
  }
}

/**
 * The same kind of group commit as the call path's (`src/modules/calls/commit.ts`): writes queued
 * during one event-loop turn are applied in one `BEGIN IMMEDIATE … COMMIT` (one fsync), and each
 * write's promise settles after that commit; without its savepoint per write.
 */
export class FloorCommit {
  private queue: { write: () => void; resolve(): void; reject(err: unknown): void }[] = [];
  private scheduled = false;
  batches = 0;
  writes = 0;

  constructor(private readonly writer: FloorWriter) {}

  run(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    try {
      this.writer.begin.run();
      for (const p of batch) p.write();
      this.writer.commit.run();
    } catch (err) {
      if (this.writer.db.inTransaction) this.writer.db.exec('ROLLBACK');
      for (const p of batch) p.reject(err);
      return;
    }
    this.batches += 1;
    this.writes += batch.length;
    for (const p of batch) p.resolve();
  }
}
