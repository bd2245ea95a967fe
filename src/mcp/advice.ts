/**
 * One sentence per refusal code saying what an agent can do next, in terms of this MCP server's
 * tools. The broker's `detail` says what happened (for a human); this says what to do about it.
 * Codes and their meaning: docs/decisions.md ("Every error code").
 */

/** The problem members an advice may read besides `code`. */
type Problem = Record<string, unknown>;

/** The tool names an advice may mention, and whether the server has them. */
export interface AdviceContext {
  /** True when the server registers a tool of that name (e.g. `request_access`). */
  hasTool(name: string): boolean;
}

const list = (v: unknown): string => (Array.isArray(v) ? v.join(', ') : String(v));

/** Where to ask for a grant: the access-request tool when this server has one, else an operator. */
function askForGrant(ctx: AdviceContext): string {
  return ctx.hasTool('request_access') ? 'ask for it with request_access (an operator decides)' : 'ask an operator (or main) for a grant';
}

const ADVICE: Record<string, (p: Problem, ctx: AdviceContext) => string> = {
  no_capability: (p, ctx) =>
    p['groups_that_may_hold'] !== undefined
      ? `No grant can give this group that level; ask a group that may hold it (${list(p['groups_that_may_hold'])}) to do it.`
      : `This group holds no grant for the provider: ${askForGrant(ctx)}, then call again once ext_capabilities lists the action.`,
  capability_expired: (_p, ctx) => `The grant has expired: ${askForGrant(ctx)} for a new one before calling again.`,
  insufficient_level: (p, ctx) =>
    p['groups_that_may_hold'] !== undefined
      ? `No grant can give this group that level; ask a group that may hold it (${list(p['groups_that_may_hold'])}) to do it.`
      : `The grant's level is below the action's: ${askForGrant(ctx)} at the action's level.`,
  action_denied: () => "The grant's deny list names this action, so no call under it can run it; do the work another way or ask an operator.",
  action_not_allowed: (_p, ctx) => `The grant's allow list leaves this action out: ${askForGrant(ctx)} that allows it.`,
  resource_out_of_scope: (_p, ctx) => `Call it on a resource inside the grant's scope (ext_capabilities lists its resources), or ${askForGrant(ctx)} covering this one.`,
  task_required: () => 'Send task_id: a task in DOING or APPROVAL assigned to this group (gov_list_pipeline lists tasks).',
  task_not_found: () => 'No task has that task_id; find the right one with gov_list_pipeline.',
  task_state: () => 'Couple the call to a task in DOING or APPROVAL: move the task there first (gov_transition) or use another task.',
  task_not_assigned: () => 'Couple the call to a task assigned to this group, or ask main to assign this one to you.',
  approval_pending: () => 'The L3 grant still lacks its two approvals; call again with the same request_id once an operator has them.',
  provider_unavailable: () => 'The host has no credentials for this provider; tell an operator, as calling again will not help.',
  disabled_by_operator: () => 'An operator switched these calls off (see `switch`: its reason and who set it); wait until it is cleared, then call again with the same request_id.',
  provider_circuit_open: () => 'The provider has been failing, so the broker is not sending it calls for now; wait the seconds Retry-After says, then call again with the same request_id.',
  rate_limited: () => 'This group is calling too fast for its limit (see `rule`); wait the seconds Retry-After says, then call again with the same request_id.',
  quota_exceeded: () => "This group has used its daily quota (see `rule` and `resets_at`); the call cannot run before the quota resets, so tell an operator if it cannot wait.",
  backpressure: () => 'This group has too many calls pending; wait a second and call again with the same request_id.',
  request_in_flight: () => 'A call with this request_id is still running; wait a second, then read it with ext_get_call or call again with the same request_id.',
  idempotency_key_reused: () => 'This request_id was used for a different call; send a new request_id for a new call.',
  validation_failed: () => 'Fix the arguments that `issues` names and call again.',
  malformed_json: () => 'Fix the arguments that `issues` names and call again.',
  unknown_action: () => 'Use an action that ext_capabilities lists.',
  secret_in_input: () => 'Remove the credential that `secrets` points at from the arguments; the broker never takes secrets from agents.',
  payload_too_large: () => 'Send less: split the content into smaller calls.',
  provider_error: () => 'The provider refused or failed (see provider_status and details): fix the request, or for a passing failure call again later with the same request_id.',
  provider_timeout: () => 'The provider did not answer in time; check whether the change happened before calling again under a new request_id.',
  unknown_outcome: () => 'Whether the call ran is unknown: check the resource before calling again under a new request_id.',
  outcome_unrecorded: () => 'The action ran but its outcome was not recorded: check the resource before calling again under a new request_id.',
  audit_unavailable: () => 'The broker could not record the request and ran nothing; call again later with the same request_id.',
  service_unavailable: () => 'The broker cannot decide right now; call again later, and tell an operator if it persists.',
  internal_error: () => 'The broker failed unexpectedly and ran nothing; call again later, and tell an operator if it persists.',
  signature_missing: () => "The broker refused this server's signature; an operator should check its setup (`broker mcp --secret`).",
  signature_invalid: () => "The broker refused this server's signature; an operator should export a current secret (`broker secrets export`).",
  signature_expired: () => "This container's clock is off from the broker's; an operator should fix the clock.",
  digest_mismatch: () => "The broker refused this server's signature; an operator should check its setup.",
  unknown_key: () => "The broker does not know this server's key (rotated out?); an operator should export a current secret (`broker secrets export`).",
  forbidden: () => 'This group may not do that; the detail says who may, so ask that group (or main).',
  separation_of_powers: () => 'Another group must do this: the group that executed a task never decides its gate, and a gate approver is never assigned the task.',
  illegal_transition: (p) => (p['allowed'] !== undefined ? `Move the task to one of: ${list(p['allowed'])}.` : 'Move the task along the state machine instead (see docs/kernel.md).'),
  done_requirements_unmet: (p) => `Meet what \`missing\` lists first${p['missing'] !== undefined ? ` (${list(p['missing'])})` : ''}, then move the task again.`,
  precondition_failed: (p) =>
    p['current_etag'] !== undefined
      ? 'The task changed since you read it: read it again (gov_task_context) and act on its current version.'
      : 'The resource is not in the state the action needs (see unmet); change that first.',
  precondition_required: () => 'Send the task version you read (version), or omit it to act on the current one.',
  conflict: () => 'The change contradicts the current state; read it again (gov_task_context) and decide anew.',
  not_found: () => 'Nothing with that id is visible to this group; check the id.',
};

/**
 * The sentence that tells an agent what to do about a refusal with `problem.code`; for a code
 * without one, a pointer to the problem's `detail`.
 */
export function adviceFor(problem: Problem, ctx: AdviceContext): string {
  const code = typeof problem['code'] === 'string' ? problem['code'] : '';
  return ADVICE[code]?.(problem, ctx) ?? 'Read detail and act on it.';
}
