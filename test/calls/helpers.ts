/**
 * Helpers for the call tests: grants through `POST /v1/grants` (as `main`), L3 approvals signed by
 * registered approvers, tasks moved through the kernel's real routes, and calls.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { addApprover, generateApproverKey, signApproval } from '../../src/modules/grants/approvers.js';
import type { BrokerResponse } from '../../src/client/index.js';
import type { TaskState } from '../../src/modules/kernel/coupling.js';
import type { TestBroker } from '../helpers/harness.js';

/** Terms for a test grant; `group` defaults to developer, `provider` to test. */
export interface GrantTerms {
  group?: string;
  provider?: string;
  level: 1 | 2 | 3;
  allowed_actions?: string[] | null;
  denied_actions?: string[] | null;
  resources?: string[] | null;
  ttl_s?: number;
  reason?: string;
}

/** Creates a grant as `main` and returns its record (201 expected). */
export async function grant(broker: TestBroker, terms: GrantTerms): Promise<{ id: string; digest: string; status: string; expires_at: string | null }> {
  const res = await broker.client('main').post('/v1/grants', { group: 'developer', provider: 'test', reason: 'call tests', ...terms });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Two approvers in two groups (security, developer), registered once per broker. */
const approverKeys = new WeakMap<TestBroker, Awaited<ReturnType<typeof generateApproverKey>>[]>();

/** Approves an L3 grant twice (two approvers of two groups) and returns the answer to the second approval. */
export async function approveTwice(broker: TestBroker, g: { id: string; digest: string }): Promise<BrokerResponse<any>> {
  let keys = approverKeys.get(broker);
  if (!keys) {
    keys = [];
    for (const [id, group] of [['calls-sec', 'security'], ['calls-dev', 'developer']] as const) {
      const k = await generateApproverKey(id);
      await addApprover(broker.deps, { id, group, publicJwk: k.publicJwk }, 'operator:test');
      keys.push(k);
    }
    approverKeys.set(broker, keys);
  }
  let res: BrokerResponse<any> | undefined;
  for (const k of keys) {
    const iat = Math.floor(broker.clock.now() / 1000);
    const jws = await signApproval(k.privateJwk, { grant_id: g.id, grant_digest: g.digest, decision: 'approve', iat, exp: iat + 600 });
    res = await broker.client('main').request('POST', `/v1/grants/${g.id}/approvals`, { rawBody: jws, headers: { 'content-type': 'application/jose' } });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  }
  return res!;
}

const PATH: TaskState[] = ['INBOX', 'TRIAGED', 'READY', 'DOING', 'REVIEW', 'APPROVAL', 'DONE'];

/**
 * Creates a BUG task (no gate, no checklist) as `main`, assigned to `assignee`, and moves it to
 * `state` through the kernel's signed routes (BLOCKED: blocked from DOING).
 * @returns the task id.
 */
export async function taskIn(broker: TestBroker, state: TaskState, assignee = 'developer'): Promise<string> {
  const main = broker.client('main');
  const worker = broker.client(assignee);
  let r = await main.post('/v1/tasks', { title: `task in ${state}`, type: 'BUG' });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const id: string = r.body.id;
  const target = state === 'BLOCKED' ? 'DOING' : state;
  const moves: Partial<Record<TaskState, { by: typeof main; body: Record<string, unknown> }>> = {
    TRIAGED: { by: main, body: {} },
    READY: { by: main, body: { assigned_group: assignee } },
    DOING: { by: worker, body: {} },
    REVIEW: { by: worker, body: {} },
    APPROVAL: { by: main, body: {} },
    DONE: { by: main, body: {} },
  };
  for (const to of PATH.slice(1, PATH.indexOf(target) + 1)) {
    const m = moves[to]!;
    r = await m.by.post(`/v1/tasks/${id}/transition`, { to, ...m.body }, { headers: { 'if-match': r.headers.get('etag')! } });
    expect(r.status, `${to}: ${JSON.stringify(r.body)}`).toBe(200);
  }
  if (state === 'BLOCKED') {
    r = await worker.post(`/v1/tasks/${id}/transition`, { to: 'BLOCKED', reason: 'waiting on a vendor' }, { headers: { 'if-match': r.headers.get('etag')! } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  expect(r.body.state).toBe(state);
  return id;
}

/** Body of a call. */
export interface CallBody {
  action: string;
  params?: Record<string, unknown>;
  task_id?: string;
}

/** Sends `POST /v1/ext/calls` as `group` with `key` (a fresh one by default). */
export function call(broker: TestBroker, group: string, body: CallBody, key: string = randomUUID()): Promise<BrokerResponse<any>> {
  return broker.client(group).post('/v1/ext/calls', body, { idempotencyKey: key });
}

/** The audit rows of one call (`call:<group>:<key>`), by kind. */
export async function auditKinds(broker: TestBroker, group: string, key: string): Promise<string[]> {
  return (await broker.auditRows(`call:${group}:${key}`)).map((r) => r.kind);
}
