/**
 * Steps 5–12 of the decision order (docs/decisions.md): grant lookup, expiry, level, deny list,
 * allow list, resource scope, task coupling and L3 approval. Pure and synchronous: grants come from
 * a {@link GrantSource} (in memory), tasks from one prepared primary-key read, time from the caller.
 */
import type { Groups } from '../../identity/groups.js';
import type { ActionLevel } from '../../../providers/contract.js';
import type { GrantView, RevokedGrant } from '../../grants/types.js';
import type { CouplingTask, TaskState } from '../../kernel/coupling.js';
import { aboveCeilingDetail, ceilingBreach, noCapabilityDetail, revokedGrantMember } from './explain.js';
import { firstMatch } from './patterns.js';
import type { ReceiptStep } from './receipt.js';

/** The 403 codes steps 5–12 answer with, in step order. */
export type DenialCode =
  | 'no_capability'
  | 'capability_expired'
  | 'insufficient_level'
  | 'action_denied'
  | 'action_not_allowed'
  | 'resource_out_of_scope'
  | 'task_required'
  | 'task_not_found'
  | 'task_state'
  | 'task_not_assigned'
  | 'approval_pending';

/** Task states an L2+ call may be coupled to. */
export const COUPLABLE_STATES: ReadonlySet<TaskState> = new Set(['DOING', 'APPROVAL']);
/** The coordinator group, allowed to couple calls to any task. */
export const COORDINATOR_GROUP = 'main';
/** Valid approvals an L3 grant needs (two-man rule). */
export const L3_APPROVALS = 2;

/** What is being decided. */
export interface DecisionRequest {
  group: string;
  action: { id: string; level: ActionLevel };
  /** The resource the call touches; null when unknown (the capabilities listing skips step 10). */
  resource: string | null;
  /**
   * The task the call is coupled to. `undefined` skips step 11 (the capabilities listing);
   * null means the request named no task.
   */
  taskId: string | null | undefined;
  /** The decision instant, Unix ms (from the injected clock). */
  now: number;
}

/** The outcome of steps 5–12: the grant that allows the call, or the first failing step's code. */
export type Verdict =
  | { allowed: true; grant: GrantView; steps: ReceiptStep[] }
  | {
      allowed: false;
      code: DenialCode;
      /** A sentence a human can act on. */
      detail: string;
      /** Extra problem members (e.g. `task_state`). */
      extensions: Record<string, unknown>;
      /** The grant the denial is about, when there is one. */
      grant: GrantView | null;
      steps: ReceiptStep[];
    };

/** Looks a task up for coupling; null when it does not exist (see `findTaskForCoupling`). */
export type TaskLookup = (taskId: string) => CouplingTask | null;

/**
 * What a refusal's `detail` may name besides the candidate grants. Both members are optional;
 * without them the texts are the generic ones, and the codes never depend on them.
 */
export interface DecisionContext {
  /**
   * The groups and their ceilings (`policies/groups.json`, loaded once per process): an action
   * above the calling group's ceiling is said to be so, with the groups that may hold its level,
   * instead of "ask for a grant".
   */
  groups?: Groups;
  /**
   * The group's most recently revoked grant for a provider (`GrantSource.lastRevoked`), named by
   * a 403 `no_capability` (detail and `revoked_grant`). Called only on that refusal.
   */
  lastRevoked?: (group: string, provider: string) => RevokedGrant | null;
}

const STEP_ORDER = ['expiry', 'level', 'deny_list', 'allow_list', 'resource'] as const;
type GrantStep = (typeof STEP_ORDER)[number];
const STEP_CODE: Record<GrantStep, DenialCode> = {
  expiry: 'capability_expired',
  level: 'insufficient_level',
  deny_list: 'action_denied',
  allow_list: 'action_not_allowed',
  resource: 'resource_out_of_scope',
};

/** A grant's first failing step (its index in {@link STEP_ORDER}) and the code it answers. */
interface GrantFailure {
  step: GrantStep;
  code: DenialCode;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Runs steps 6–10 on one grant and returns the index in {@link STEP_ORDER} of the first failing
 * step, or -1 when the grant covers the call. Allocates nothing: it runs for every candidate.
 * An active grant stops working at the exact instant `expiresAt` (`now >= expiresAt`).
 */
function failingStep(g: GrantView, req: DecisionRequest): number {
  if (g.expiresAt !== null && req.now >= g.expiresAt) return 0;
  if (g.level < req.action.level) return 1;
  if (g.deniedActions && firstMatch(g.deniedActions, req.action.id) !== null) return 2;
  if (g.allowedActions && firstMatch(g.allowedActions, req.action.id) === null) return 3;
  if (req.resource !== null && g.resources && firstMatch(g.resources, req.resource) === null) return 4;
  return -1;
}

/** The failure of `g` at step index `i`: its step and code. */
function failureAt(i: number): GrantFailure {
  const step = STEP_ORDER[i]!;
  return { step, code: STEP_CODE[step] };
}

/**
 * The sentence a human can act on for a grant that failed at `step`. A level above the group's
 * ceiling (in `groups`) says so rather than "ask for a grant" (see {@link ceilingBreach}).
 */
function failureDetail(step: GrantStep, g: GrantView, req: DecisionRequest, groups: Groups | undefined): string {
  const id = req.action.id;
  switch (step) {
    case 'expiry':
      return `Grant ${g.id} expired at ${iso(g.expiresAt!)}; ask for a new grant to call ${id}.`;
    case 'level': {
      const breach = ceilingBreach(groups, req.group, req.action);
      if (breach !== null) return aboveCeilingDetail(g, req.group, breach);
      return `${id} needs L${req.action.level} but grant ${g.id} is L${g.level}; ask for an L${req.action.level} grant.`;
    }
    case 'deny_list':
      return `Grant ${g.id} denies ${id} (pattern "${firstMatch(g.deniedActions!, id)}"); a deny list always wins over an allow list.`;
    case 'allow_list':
      return `Grant ${g.id} allows only ${g.allowedActions!.join(', ') || 'no actions'}, not ${id}; ask for a grant that allows it.`;
    default:
      return `${req.resource} is outside the resources of grant ${g.id} (${g.resources!.join(', ') || 'none'}); ask for a grant that covers it.`;
  }
}

/** Receipt steps 5–10 for `g`, up to and including `failed` (all of them when it passed). */
function grantSteps(g: GrantView, req: DecisionRequest, considered: number, failed: GrantFailure | null): ReceiptStep[] {
  const steps: ReceiptStep[] = [{ step: 'grant', result: 'pass', note: `${g.id} (L${g.level}, ${g.status}; ${considered} considered)` }];
  const notes: Record<GrantStep, string> = {
    expiry: g.expiresAt === null ? 'no expiry' : `until ${iso(g.expiresAt)}`,
    level: `L${g.level} >= L${req.action.level}`,
    deny_list: g.deniedActions?.length ? 'no pattern matches' : 'empty',
    allow_list: g.allowedActions ? 'listed' : 'every action up to the level',
    resource: req.resource === null ? 'not evaluated' : g.resources ? req.resource : `${req.resource} (any resource)`,
  };
  for (const step of STEP_ORDER) {
    if (failed?.step === step) {
      steps.push({ step, result: 'fail', note: failed.code });
      return steps;
    }
    steps.push({ step, result: req.resource === null && step === 'resource' ? 'skip' : 'pass', note: notes[step] });
  }
  return steps;
}

function deny(code: DenialCode, detail: string, grant: GrantView | null, steps: ReceiptStep[], extensions: Readonly<Record<string, unknown>> = {}): Verdict {
  return { allowed: false, code, detail, extensions: { ...extensions }, grant, steps };
}

/** The provider of the requested action: its id up to the first dot. */
const providerOf = (req: DecisionRequest): string => req.action.id.slice(0, req.action.id.indexOf('.'));

/**
 * A 403 `no_capability` that names the group's most recently revoked grant for the provider,
 * when `lastRevoked` knows one: the detail, `revoked_grant` and the receipt step say so; `v`
 * itself when there is nothing to name.
 */
function withRevocation(v: Verdict & { allowed: false }, req: DecisionRequest, ctx: DecisionContext): Verdict {
  const provider = providerOf(req);
  const revoked = ctx.lastRevoked!(req.group, provider);
  if (revoked === null) return v;
  const breach = ceilingBreach(ctx.groups, req.group, req.action);
  return {
    ...v,
    detail: noCapabilityDetail(req.group, provider, breach, revoked),
    extensions: { ...v.extensions, revoked_grant: revokedGrantMember(revoked) },
    steps: [{ step: 'grant', result: 'fail', note: `no grant for ${provider}; ${revoked.id} revoked` }],
  };
}

/**
 * Steps 11 (task coupling, mandatory for L2+ and checked for L1 when a task is named) on top of
 * the grant steps. Returns a denial or null.
 */
function couplingFailure(req: DecisionRequest, findTask: TaskLookup): { code: DenialCode; detail: string; extensions?: Record<string, unknown> } | null {
  const taskId = req.taskId;
  if (taskId === undefined) return null;
  if (taskId === null) {
    if (req.action.level < 2) return null;
    return {
      code: 'task_required',
      detail: `${req.action.id} is an L${req.action.level} action: send task_id, the id of a task in DOING or APPROVAL assigned to ${req.group}.`,
    };
  }
  const task = findTask(taskId);
  if (!task) return { code: 'task_not_found', detail: `Task ${taskId} does not exist; send the id of your task in DOING or APPROVAL.` };
  if (!COUPLABLE_STATES.has(task.state)) {
    return {
      code: 'task_state',
      detail: `Task ${taskId} is in ${task.state}; calls coupled to a task need it in DOING or APPROVAL.`,
      extensions: { task_state: task.state },
    };
  }
  if (task.assignedGroup !== req.group && req.group !== COORDINATOR_GROUP) {
    return {
      code: 'task_not_assigned',
      detail: `Task ${taskId} is assigned to ${task.assignedGroup ?? 'no group'}, not ${req.group}; only its assigned group (or ${COORDINATOR_GROUP}) may couple calls to it.`,
      extensions: { assigned_group: task.assignedGroup },
    };
  }
  return null;
}

/** An L3 grant works only when active with its two approvals; lower levels only when active. */
function usable(g: GrantView): boolean {
  return g.status === 'active' && (g.level < 3 || g.approvals >= L3_APPROVALS);
}

/**
 * What steps 5–10 settle on a candidate list, before task coupling and approval: a denial (the
 * whole verdict), or the grant that passes with its receipt steps and step 12's outcome.
 */
type GrantPhase =
  | { kind: 'denied'; verdict: Verdict & { allowed: false } }
  | {
      kind: 'passing';
      grant: GrantView;
      steps: ReceiptStep[];
      /** Step 12: the receipt step, and the denial's detail and extensions when the grant is not usable. */
      approval: ReceiptStep;
      pending: { detail: string; extensions: Record<string, unknown> } | null;
    };

/** Steps 5–10 on `grants` (see {@link decide}). */
function grantPhase(req: DecisionRequest, grants: readonly GrantView[], groups: Groups | undefined): GrantPhase {
  let passing: GrantView | null = null;
  let furthest: GrantView | null = null;
  let furthestStep = -1;
  let considered = 0;
  for (const g of grants) {
    if (g.group !== req.group || (g.status !== 'active' && g.status !== 'pending_approval')) continue;
    considered += 1;
    const i = failingStep(g, req);
    if (i < 0) {
      if (passing === null || preferable(g, passing)) passing = g;
    } else if (STEP_ORDER[i] === 'deny_list') {
      const f = failureAt(i);
      return denied(deny(f.code, failureDetail(f.step, g, req, groups), g, grantSteps(g, req, considered, f)));
    } else if (i > furthestStep) {
      furthest = g;
      furthestStep = i;
    }
  }
  if (passing === null) {
    if (furthest === null) {
      const provider = providerOf(req);
      const breach = ceilingBreach(groups, req.group, req.action);
      return denied(
        deny('no_capability', noCapabilityDetail(req.group, provider, breach, null), null, [{ step: 'grant', result: 'fail', note: `no grant for ${provider}` }], breach?.extensions),
      );
    }
    const f = failureAt(furthestStep);
    const breach = f.step === 'level' ? ceilingBreach(groups, req.group, req.action) : null;
    return denied(deny(f.code, failureDetail(f.step, furthest, req, groups), furthest, grantSteps(furthest, req, considered, f), breach?.extensions));
  }
  const steps = grantSteps(passing, req, considered, null);
  if (!usable(passing)) {
    return {
      kind: 'passing',
      grant: passing,
      steps,
      approval: { step: 'approval', result: 'fail', note: `${passing.approvals}/${L3_APPROVALS} approvals` },
      pending: {
        detail: `Grant ${passing.id} is ${passing.status === 'active' ? 'active' : 'pending approval'} with ${passing.approvals} of ${L3_APPROVALS} approvals; an L3 grant works once two approvers of two different groups approve it.`,
        extensions: { approvals: passing.approvals, approvals_required: L3_APPROVALS },
      },
    };
  }
  return {
    kind: 'passing',
    grant: passing,
    steps,
    approval: passing.level === 3 ? { step: 'approval', result: 'pass', note: `${passing.approvals} approvals` } : { step: 'approval', result: 'skip', note: `L${passing.level} grant` },
    pending: null,
  };
}

function denied(v: Verdict): GrantPhase {
  if (v.allowed) throw new Error('not a denial');
  return { kind: 'denied', verdict: v };
}

/**
 * Decides steps 5–12 for one call.
 *
 * With several grants for the group and provider: a grant whose deny list matches the action
 * (and which is unexpired and of a sufficient level) denies the call whatever the others allow
 * (deny-wins); otherwise the call is allowed by a grant that passes every step (the lowest level
 * first). When none passes, the denial is the one of the grant that got furthest in the order,
 * which names the most specific thing to fix.
 * @param grants candidates for the group and the action's provider (`GrantSource.candidates`).
 * @param findTask the kernel's task lookup (only called for step 11).
 * @param ctx what refusal texts may name besides the grants ({@link DecisionContext}); never
 *   changes a code or whether a call is allowed.
 * @returns a new verdict; its steps are the receipt's steps 5–12.
 */
export function decide(req: DecisionRequest, grants: readonly GrantView[], findTask: TaskLookup, ctx: DecisionContext = {}): Verdict {
  const phase = grantPhase(req, grants, ctx.groups);
  if (phase.kind === 'denied') {
    const v = phase.verdict;
    return v.code === 'no_capability' && ctx.lastRevoked !== undefined ? withRevocation(v, req, ctx) : v;
  }
  return finish(phase, req, findTask);
}

/** Steps 11 and 12 on top of a passing phase. */
function finish(phase: GrantPhase & { kind: 'passing' }, req: DecisionRequest, findTask: TaskLookup): Verdict {
  const passing = phase.grant;
  const steps = phase.steps;
  const coupling = couplingFailure(req, findTask);
  if (coupling) {
    steps.push({ step: 'task', result: 'fail', note: coupling.code });
    return deny(coupling.code, coupling.detail, passing, steps, coupling.extensions);
  }
  steps.push(
    req.taskId === undefined
      ? { step: 'task', result: 'skip', note: 'not evaluated' }
      : req.taskId === null
        ? { step: 'task', result: 'skip', note: 'L1 without task_id' }
        : { step: 'task', result: 'pass', note: req.taskId },
  );
  steps.push(phase.approval);
  if (phase.pending !== null) return deny('approval_pending', phase.pending.detail, passing, steps, phase.pending.extensions);
  return { allowed: true, grant: passing, steps };
}

/** Among grants that pass: a usable one first, then the lowest level (least privilege). */
function preferable(a: GrantView, b: GrantView): boolean {
  const ua = usable(a);
  if (ua !== usable(b)) return ua;
  return a.level < b.level;
}
