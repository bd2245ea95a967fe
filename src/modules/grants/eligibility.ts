/**
 * Who may approve an L3 grant (design: "Two-man rule", and the principle of separation of powers:
 * whoever requests or benefits cannot approve). The approval path (`submitApproval`) runs it for
 * every signed approval, whichever way the JWS arrives: `POST /v1/grants/{id}/approvals`,
 * `broker approve <grant-id> --key` or `--jws` (a JWS signed offline with `--grant-file`).
 */
import { ApiError } from '../../platform/http/problem.js';
import type { Approver } from './approvers.js';
import type { ApprovalRow, GrantRow } from './store.js';

/**
 * Why an approver may not approve, as the `rule` member of a 403 `approver_ineligible`:
 * `requester` (the approver is, or is of the group of, whoever requested or amended the grant),
 * `beneficiary_group` (the approver is of the group the grant is for), `same_group` (an approver of
 * the same group has approved these terms already).
 */
export type IneligibleRule = 'requester' | 'beneficiary_group' | 'same_group';

/**
 * Refuses an approval (a denial is never refused here) that separation of powers forbids, checked
 * in this order:
 * 1. the approver requested or amended the grant: an operator whose subject is the approver id,
 *    or a group the approver belongs to (`requester`);
 * 2. the approver belongs to the grant's own group, whoever requested it (`beneficiary_group`);
 * 3. an approver of the same group approved these terms already (`same_group`).
 * @param grant the grant (`id`, `group`, `requestedBy`, and `amendedBy`: the actors of its
 *   `grant.amended` audit rows).
 * @param current the decisions already recorded on the grant's current digest.
 * @throws ApiError 403 `approver_ineligible` with the extensions `rule` ({@link IneligibleRule})
 *   and `approver_group`.
 */
export function requireEligible(
  grant: Pick<GrantRow, 'id' | 'group' | 'requestedBy'> & { amendedBy: readonly string[] },
  current: readonly Pick<ApprovalRow, 'approverId' | 'approverGroup' | 'decision'>[],
  approver: Pick<Approver, 'id' | 'group'>,
): void {
  const refuse = (rule: IneligibleRule, detail: string) => new ApiError('approver_ineligible', detail, { rule, approver_group: approver.group });
  const authors = new Set([grant.requestedBy, ...grant.amendedBy]);
  if (authors.has(`operator:${approver.id}`)) {
    throw refuse('requester', `Approver ${approver.id} requested or changed this grant as operator:${approver.id}; the requester cannot approve it.`);
  }
  if (authors.has(approver.group)) {
    throw refuse('requester', `Approver ${approver.id} is of the ${approver.group} group, which requested or changed this grant; the requester cannot approve it.`);
  }
  if (approver.group === grant.group) {
    throw refuse(
      'beneficiary_group',
      `Approver ${approver.id} is of the ${approver.group} group and the grant is for ${grant.group}; the group that benefits cannot approve it. The two approvals must come from two other groups.`,
    );
  }
  const sameGroup = current.find((a) => a.decision === 'approve' && a.approverGroup === approver.group);
  if (sameGroup) {
    throw refuse('same_group', `${sameGroup.approverId} of the ${approver.group} group has approved already; the second approval must come from another group.`);
  }
}
