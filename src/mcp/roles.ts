/**
 * What an agent group does in the orchestration kernel, read from the kernel's own rules, so the
 * MCP server lists each group the governance tools of its role:
 * - the coordinator (`main`) creates, triages and assigns tasks and decides the gates
 *   {@link GATE_APPROVER} gives it (RevOps, Claims, Product);
 * - a gate approver that is not the coordinator (`security`) decides its gates (Security);
 * - every other group (`developer`) works the tasks assigned to it: acknowledges its dispatches,
 *   moves its tasks and updates their definition of done.
 * Listing is guidance, never enforcement: the broker decides every request whatever the tool.
 */
import { COORDINATOR_GROUP } from '../modules/calls/decision/decide.js';
import { GATE_APPROVER, type Gate } from '../modules/kernel/model.js';

/** A group's roles in the kernel. */
export interface GroupRoles {
  group: string;
  /** True for the coordinator group (`main`). */
  coordinator: boolean;
  /** The gates this group decides (its {@link GATE_APPROVER} entries), in `GATES` order. */
  approves: readonly Exclude<Gate, 'none'>[];
  /** True for a group that is neither the coordinator nor a gate approver: it works tasks. */
  worker: boolean;
}

/** The roles of `group` (any name: a group the kernel gives no special role is a worker). */
export function rolesOf(group: string): GroupRoles {
  const coordinator = group === COORDINATOR_GROUP;
  const approves = (Object.keys(GATE_APPROVER) as Exclude<Gate, 'none'>[]).filter((gate) => GATE_APPROVER[gate] === group);
  return { group, coordinator, approves, worker: !coordinator && approves.length === 0 };
}
