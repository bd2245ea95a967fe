/**
 * Steps 5–12 of the decision order on plain GrantView values (the HTTP tests in this folder cover
 * the same codes through a real server). Table-driven: one row per rule.
 */
import { describe, expect, it } from 'vitest';
import { decide, type DecisionRequest } from '../../src/modules/calls/decision/decide.js';
import { matchesPattern } from '../../src/modules/calls/decision/patterns.js';
import type { GrantView } from '../../src/modules/grants/types.js';
import type { CouplingTask } from '../../src/modules/kernel/coupling.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const grant = (over: Partial<GrantView> = {}): GrantView => ({
  id: 'g1',
  group: 'developer',
  provider: 'test',
  level: 2,
  allowedActions: null,
  deniedActions: null,
  resources: null,
  status: 'active',
  activatedAt: NOW - 1000,
  expiresAt: null,
  approvals: 0,
  ...over,
});
const req = (over: Partial<DecisionRequest> = {}): DecisionRequest => ({
  group: 'developer',
  action: { id: 'test.read', level: 1 },
  resource: 'acme/api',
  taskId: null,
  now: NOW,
  ...over,
});
const tasks: Record<string, CouplingTask> = {
  doing: { id: 'doing', state: 'DOING', assignedGroup: 'developer' },
  approval: { id: 'approval', state: 'APPROVAL', assignedGroup: 'developer' },
  other: { id: 'other', state: 'DOING', assignedGroup: 'security' },
};
for (const state of ['INBOX', 'TRIAGED', 'READY', 'REVIEW', 'DONE', 'BLOCKED'] as const) tasks[state] = { id: state, state, assignedGroup: 'developer' };
const findTask = (id: string) => tasks[id] ?? null;
const codeOf = (r: DecisionRequest, grants: GrantView[]) => {
  const v = decide(r, grants, findTask);
  return v.allowed ? `allowed:${v.grant.id}` : v.code;
};

describe('decision steps 5–12', () => {
  const write = { id: 'test.write', level: 2 as const };
  const prod = { id: 'test.deploy', level: 3 as const };
  it.each([
    ['no grant at all', req(), [], 'no_capability'],
    ['a grant of another group is not a candidate', req(), [grant({ group: 'security' })], 'no_capability'],
    ['a revoked grant is not a candidate', req(), [grant({ status: 'revoked' })], 'no_capability'],
    ['expired at the exact instant', req(), [grant({ expiresAt: NOW })], 'capability_expired'],
    ['one ms before expiry still works', req(), [grant({ expiresAt: NOW + 1 })], 'allowed:g1'],
    ['level below the action', req({ action: write, taskId: 'doing' }), [grant({ level: 1 })], 'insufficient_level'],
    ['deny-wins inside one grant', req(), [grant({ allowedActions: ['test.read'], deniedActions: ['test.read'] })], 'action_denied'],
    ['deny-wins across grants', req(), [grant({ id: 'allow' }), grant({ id: 'deny', deniedActions: ['test.*'] })], 'action_denied'],
    ['a deny in an expired grant does not apply', req(), [grant({ id: 'allow' }), grant({ id: 'old', deniedActions: ['*'], expiresAt: NOW })], 'allowed:allow'],
    ['allow list without the action', req(), [grant({ allowedActions: ['test.write'] })], 'action_not_allowed'],
    ['allow list prefix pattern', req(), [grant({ allowedActions: ['test.re*'] })], 'allowed:g1'],
    ['resource outside the grant', req({ resource: 'other/api' }), [grant({ resources: ['acme/*'] })], 'resource_out_of_scope'],
    ['resource inside a prefix pattern', req(), [grant({ resources: ['acme/*'] })], 'allowed:g1'],
    ['L2 without a task', req({ action: write }), [grant()], 'task_required'],
    ['L2 with an unknown task', req({ action: write, taskId: 'nope' }), [grant()], 'task_not_found'],
    ['L2 on a task in DOING', req({ action: write, taskId: 'doing' }), [grant()], 'allowed:g1'],
    ['L2 on a task in APPROVAL', req({ action: write, taskId: 'approval' }), [grant()], 'allowed:g1'],
    ...(['INBOX', 'TRIAGED', 'READY', 'REVIEW', 'DONE', 'BLOCKED'] as const).map(
      (s) => [`L2 on a task in ${s}`, req({ action: write, taskId: s }), [grant()], 'task_state'] as const,
    ),
    ['L2 on a task of another group', req({ action: write, taskId: 'other' }), [grant()], 'task_not_assigned'],
    ['main may couple to any task', req({ group: 'main', action: write, taskId: 'other' }), [grant({ group: 'main' })], 'allowed:g1'],
    ['L1 with a task checks it too', req({ taskId: 'REVIEW' }), [grant()], 'task_state'],
    ['L3 pending approval', req({ action: prod, taskId: 'doing' }), [grant({ level: 3, status: 'pending_approval', approvals: 1 })], 'approval_pending'],
    ['L3 active with one approval', req({ action: prod, taskId: 'doing' }), [grant({ level: 3, approvals: 1 })], 'approval_pending'],
    ['L3 active with two approvals', req({ action: prod, taskId: 'doing' }), [grant({ level: 3, approvals: 2 })], 'allowed:g1'],
    ['the grant that got furthest names the denial', req({ action: write, taskId: 'doing' }), [grant({ id: 'a', expiresAt: NOW }), grant({ id: 'b', level: 1 })], 'insufficient_level'],
    ['a usable grant beats a pending one', req(), [grant({ id: 'p', level: 3, status: 'pending_approval' }), grant({ id: 'ok', level: 2 })], 'allowed:ok'],
    ['the lowest sufficient level is chosen', req(), [grant({ id: 'l2', level: 2 }), grant({ id: 'l1', level: 1 })], 'allowed:l1'],
  ] as const)('%s → %s', (_name, r, grants, expected) => {
    expect(codeOf(r, [...grants])).toBe(expected);
  });

  it('records every step in order for an allowed call, and stops at the failing step', () => {
    const ok = decide(req({ action: write, taskId: 'doing' }), [grant()], findTask);
    expect(ok.steps.map((s) => `${s.step}:${s.result}`)).toEqual([
      'grant:pass', 'expiry:pass', 'level:pass', 'deny_list:pass', 'allow_list:pass', 'resource:pass', 'task:pass', 'approval:skip',
    ]);
    const denied = decide(req(), [grant({ allowedActions: ['test.write'] })], findTask);
    expect(denied.steps.map((s) => `${s.step}:${s.result}`)).toEqual(['grant:pass', 'expiry:pass', 'level:pass', 'deny_list:pass', 'allow_list:fail']);
  });

  it('names the task state in task_state', () => {
    const v = decide(req({ action: write, taskId: 'REVIEW' }), [grant()], findTask);
    expect(v.allowed).toBe(false);
    if (!v.allowed) {
      expect(v.extensions).toEqual({ task_state: 'REVIEW' });
      expect(v.detail).toContain('REVIEW');
    }
  });
});

describe('refusal texts from the decision context', () => {
  const groups = new Map([
    ['main', { name: 'main', ceiling: 3 as const, description: '' }],
    ['developer', { name: 'developer', ceiling: 2 as const, description: '' }],
  ]);
  const prod = { id: 'test.deploy', level: 3 as const };

  it('the groups change the texts of a refusal, never its code', () => {
    const frozen = Object.freeze([Object.freeze(grant({ level: 2 }))]);
    const r = req({ action: prod, taskId: 'doing' });
    const plain = decide(r, frozen, findTask);
    const withCeiling = decide(r, frozen, findTask, { groups });
    expect(plain).toMatchObject({ allowed: false, code: 'insufficient_level', extensions: {} });
    expect(withCeiling).toMatchObject({ allowed: false, code: 'insufficient_level', extensions: { group_ceiling: 2, required_level: 3, groups_that_may_hold: ['main'] } });
    if (!plain.allowed && !withCeiling.allowed) {
      expect(plain.detail).toContain('ask for an L3 grant');
      expect(withCeiling.detail).toContain("group developer's ceiling is L2");
    }
    expect(decide(r, frozen, findTask)).toEqual(plain);
  });

  it('asks lastRevoked only for no_capability', () => {
    const asked: string[] = [];
    const lastRevoked = (group: string, provider: string) => {
      asked.push(`${group}/${provider}`);
      return { id: 'grt_old', revokedAt: NOW - 60_000, revokedBy: 'operator:olga', reason: null };
    };
    const empty = Object.freeze([] as GrantView[]);
    const named = decide(req(), empty, findTask, { lastRevoked });
    expect(named).toMatchObject({ allowed: false, code: 'no_capability', extensions: { revoked_grant: { id: 'grt_old', revoked_by: 'operator:olga', reason: null } } });
    expect(decide(req(), empty, findTask)).toMatchObject({ code: 'no_capability', extensions: {} });
    expect(decide(req(), Object.freeze([Object.freeze(grant())]), findTask, { lastRevoked }).allowed).toBe(true);
    expect(asked).toEqual(['developer/test']);
  });
});

describe('patterns', () => {
  it.each([
    ['github.get_repo', 'github.get_repo', true],
    ['github.get_*', 'github.get_repo', true],
    ['github.get_*', 'github.create_issue', false],
    ['*', 'anything', true],
    ['acme/*', 'acme/api', true],
    ['acme/*', 'acme', false],
    ['acme/api', 'acme/api2', false],
    ['Acme/api', 'acme/api', false],
  ] as const)('%s matches %s: %s', (p, v, expected) => {
    expect(matchesPattern(p, v)).toBe(expected);
  });
});
