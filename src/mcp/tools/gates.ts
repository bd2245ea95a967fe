/**
 * `gov_approve` (earlier `decide_gate`): a gate's approver approves a task in APPROVAL or requests
 * changes. Listed to the groups that decide a gate (`GATE_APPROVER`: main the RevOps, Claims and
 * Product gates, security the Security gate), its description naming the gates of the group.
 */
import { z } from 'zod';
import { ReasonText } from '../../modules/kernel/http.js';
import { TaskSchema } from '../../modules/kernel/routes/schemas.js';
import { WRITE, zodTool, type ToolFamily } from '../registry.js';
import { mutateTask, TaskIdArg, Version } from './task-write.js';

/** The gate tools. */
export const gateTools: ToolFamily = (ctx) => {
  const gates = ctx.roles.approves;
  const yours = gates.length === 0 ? 'This group decides no gate.' : `This group decides the ${gates.join(', ')} ${gates.length === 1 ? 'gate' : 'gates'}.`;
  return [
    zodTool({
      name: 'gov_approve',
      aliases: ['decide_gate'],
      description: `As the gate’s approver, approve a task in APPROVAL or request changes (which sends it back to REVIEW). ${yours} The group that executed the task may not decide its gate (separation_of_powers).`,
      input: z.strictObject({
        task_id: TaskIdArg,
        decision: z.enum(['approve', 'request_changes']).describe('request_changes sends the task back to REVIEW'),
        reason: ReasonText.optional().describe('Why; say what to change'),
        version: Version,
      }),
      output: TaskSchema,
      annotations: WRITE,
      listedFor: (r) => r.approves.length > 0,
      run: ({ task_id, decision, reason, version }) => ctx.answer(mutateTask(ctx.client, 'POST', task_id, 'gate', { decision, reason }, version)),
    }),
  ];
};
