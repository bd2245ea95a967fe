import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/platform/http/problem.js';
import { allowedTargets, checkTransition, rolesOf } from '../../src/modules/kernel/machine.js';
import type { TaskState } from '../../src/modules/kernel/model.js';

const task = (state: TaskState, over: Partial<{ blockedFrom: string | null; assignedGroup: string | null; gate: string }> = {}) => ({
  state,
  blockedFrom: null,
  assignedGroup: 'developer',
  gate: 'none',
  ...over,
});

describe('the transition table matches issue 3', () => {
  it.each<[TaskState, TaskState[]]>([
    ['INBOX', ['TRIAGED', 'BLOCKED']],
    ['TRIAGED', ['READY', 'BLOCKED']],
    ['READY', ['DOING', 'BLOCKED']],
    ['DOING', ['REVIEW', 'BLOCKED']],
    ['REVIEW', ['DOING', 'APPROVAL', 'BLOCKED']],
    ['APPROVAL', ['REVIEW', 'DONE', 'BLOCKED']],
    ['DONE', []],
  ])('from %s a task may move to %j', (state, expected) => {
    expect(allowedTargets(task(state)).sort()).toEqual([...expected].sort());
  });

  it.each<TaskState>(['INBOX', 'TRIAGED', 'READY', 'DOING', 'REVIEW', 'APPROVAL'])('BLOCKED returns only to where it came from (%s)', (from) => {
    expect(allowedTargets(task('BLOCKED', { blockedFrom: from }))).toEqual([from]);
  });

  it('names the allowed transitions in an illegal_transition error', () => {
    const err = (() => {
      try {
        checkTransition(task('INBOX'), 'DONE', 'main');
      } catch (e) {
        return e as ApiError;
      }
      throw new Error('expected a throw');
    })();
    expect(err.code).toBe('illegal_transition');
    expect(err.extensions).toEqual({ state: 'INBOX', allowed: ['TRIAGED', 'BLOCKED'] });
  });

  it('gives each actor its roles: main, the assignee, the gate approver, the loop', () => {
    expect([...rolesOf('main', task('READY'))]).toEqual(['main']);
    expect([...rolesOf('developer', task('READY'))]).toEqual(['assignee']);
    expect([...rolesOf('security', task('READY', { gate: 'Security' }))]).toEqual(['approver']);
    expect([...rolesOf('main', task('READY', { gate: 'RevOps', assignedGroup: 'main' }))].sort()).toEqual(['approver', 'assignee', 'main']);
    expect([...rolesOf('system', task('READY'))]).toEqual(['system']);
    expect([...rolesOf('security', task('READY'))]).toEqual([]);
  });
});
