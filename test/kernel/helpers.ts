/**
 * Kernel test helpers: drive tasks through the real signed routes of a test broker.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BrokerResponse } from '../../src/client/index.js';
import { DEFAULT_GATE, newId, type TaskJson, type TaskRow, type TaskState, type TaskType } from '../../src/modules/kernel/model.js';
import { tasks } from '../../src/modules/kernel/schema.js';
import { tasks as pgTasks } from '../../src/modules/kernel/schema.pg.js';
import { REPO_ROOT, type TestBroker } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';

/** A task as the test last saw it: its JSON and ETag. */
export interface Seen {
  id: string;
  etag: string;
  task: TaskJson;
}

/** Turns a task response into {@link Seen}; fails loudly on a non-2xx. */
export function seen(res: BrokerResponse<TaskJson>): Seen {
  if (res.status >= 300) throw new Error(`expected success, got ${res.status}: ${JSON.stringify(res.body)}`);
  return { id: res.body.id, etag: res.headers.get('etag')!, task: res.body };
}

/** The path each state is reached by from INBOX (group, target, extra body), for a task assigned to `developer`. */
const PATH: { to: TaskState; by: string; extra?: Record<string, unknown> }[] = [
  { to: 'TRIAGED', by: 'main' },
  { to: 'READY', by: 'main', extra: { assigned_group: 'developer' } },
  { to: 'DOING', by: 'developer' },
  { to: 'REVIEW', by: 'developer' },
  { to: 'APPROVAL', by: 'main' },
];

/** Kernel operations against one broker. */
export class Kernel {
  constructor(readonly broker: TestBroker) {}

  /** `POST /v1/tasks` as `group` (default main). */
  create(body: Record<string, unknown> = {}, group = 'main'): Promise<BrokerResponse<any>> {
    return this.broker.client(group).post('/v1/tasks', { title: 'A task', type: 'BUG', ...body });
  }

  /** `POST /v1/tasks/{id}/transition` as `group` with `If-Match: etag` (omitted when null). */
  move(group: string, t: Pick<Seen, 'id' | 'etag'>, to: TaskState, extra: Record<string, unknown> = {}, etag: string | null = t.etag): Promise<BrokerResponse<any>> {
    return this.broker.client(group).post(`/v1/tasks/${t.id}/transition`, { to, ...extra }, etag === null ? {} : { headers: { 'if-match': etag } });
  }

  /** A signed mutation with If-Match on any task sub-route. */
  mutate(group: string, method: 'POST' | 'PATCH', path: string, t: Pick<Seen, 'etag'>, json: unknown): Promise<BrokerResponse<any>> {
    return this.broker.client(group).request(method, path, { json, headers: { 'if-match': t.etag } });
  }

  /** `GET /v1/tasks/{id}` as main. */
  async get(id: string): Promise<Seen> {
    return seen(await this.broker.client('main').get(`/v1/tasks/${id}`));
  }

  /**
   * Creates a task (`body` merged over a BUG with no gate) and moves it along the happy path to
   * `state` (assigned to developer); BLOCKED is reached from `blockedFrom`.
   */
  async taskIn(state: TaskState, body: Record<string, unknown> = {}, blockedFrom: TaskState = 'DOING'): Promise<Seen> {
    let t = seen(await this.create(body));
    if (state === 'INBOX') return t;
    const target = state === 'BLOCKED' ? blockedFrom : state === 'DONE' ? 'APPROVAL' : state;
    for (const step of PATH) {
      if (t.task.state === target) break;
      t = seen(await this.move(step.by, t, step.to, step.extra));
    }
    if (state === 'BLOCKED') t = seen(await this.move('main', t, 'BLOCKED', { reason: 'waiting on a vendor' }));
    if (state === 'DONE') t = seen(await this.move('main', t, 'DONE'));
    return t;
  }

  /**
   * Writes a task row straight into the database, past every route: for state the routes can no
   * longer make, such as a task stored before a rule existed. `fields` go over a BUG in INBOX,
   * created by main, with no gate; the id is a fresh ULID.
   * @returns the task as `GET /v1/tasks/{id}` answers it.
   */
  async insertRow(fields: Partial<TaskRow> = {}): Promise<Seen> {
    const now = this.broker.clock.now();
    const values = { id: newId(now), title: 'A stored task', type: 'BUG', priority: 'P2', state: 'INBOX', gate: 'none', createdBy: 'main', createdAt: now, updatedAt: now, ...fields } as const;
    const { database } = this.broker.deps;
    if (database.engine === 'postgres') await database.pg.orm.insert(pgTasks).values(values);
    else database.db.orm.insert(tasks).values(values).run();
    return this.get(values.id);
  }

  /**
   * A task stored before a gated task could no longer be assigned to its gate's approver: of
   * `type` (with the gate of its type), assigned to and executed by `group`, in APPROVAL with the
   * gate pending and at version 6, as the happy path would have left it. Written with
   * {@link insertRow}, because no route makes this state any more.
   */
  stuckInApproval(type: TaskType, group: string, fields: Partial<TaskRow> = {}): Promise<Seen> {
    return this.insertRow({ title: `stuck ${type} executed by ${group}`, type, gate: DEFAULT_GATE[type]!, gateStatus: 'pending', state: 'APPROVAL', assignedGroup: group, executorGroup: group, version: 6, ...fields });
  }

  /** The audit rows about one subject, oldest first: `[kind, actor, detail]`. */
  async audit(subject: string): Promise<{ kind: string; actor: string; detail: Record<string, unknown> }[]> {
    return (await this.broker.auditRows(subject)).map((r) => ({ kind: r.kind, actor: r.actor, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }
}

const execFileAsync = promisify(execFile);

/** Runs the real `broker audit verify` (`bin/broker.js audit verify`) on a data directory. */
export async function auditVerifyCli(dataDir: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [BIN, 'audit', 'verify'], {
    cwd: REPO_ROOT,
    env: { ...process.env, BROKER_DATA_DIR: dataDir, BROKER_POLICIES_DIR: `${REPO_ROOT}/policies`, BROKER_LOG_LEVEL: 'error' },
  });
  return stdout;
}
