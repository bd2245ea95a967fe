/** @jsxImportSource hono/jsx */
/**
 * The kernel board: tasks by state (INBOX … DONE, BLOCKED), each with its gate, the gate's
 * decisions and its dispatches. The kernel's routes serve agent groups only, so the console reads
 * the kernel's store directly, read-only, for a signed-in operator or auditor.
 */
import type { DispatchRow, GateDecisionRow, TaskRow } from '../modules/kernel/model.js';
import { Badge, iso, Page } from './layout.js';
import type { Session } from './session.js';

/** One task on the board, with its gate decisions and dispatches. */
export interface BoardTask {
  task: TaskRow;
  gates: GateDecisionRow[];
  dispatches: DispatchRow[];
}

/** `GET /console/tasks`: one column per state, `more` when a column was cut at its limit. */
export function TasksPage(props: { session: Session; group: string; columns: Array<{ state: string; tasks: BoardTask[]; more: boolean }> }) {
  return (
    <Page title="Tasks" session={props.session}>
      <form class="filters" method="get" action="/console/tasks" aria-label="Filter tasks">
        <label>
          Assigned group
          <input name="group" value={props.group} autocomplete="off" />
        </label>
        <button type="submit">Filter</button>
      </form>
      <div class="board">
        {props.columns.map((col) => (
          <section aria-labelledby={`col-${col.state}`} data-testid={`column-${col.state}`}>
            <h2 id={`col-${col.state}`}>
              {col.state} ({col.tasks.length}
              {col.more ? '+' : ''})
            </h2>
            <ul>
              {col.tasks.map(({ task, gates, dispatches }) => (
                <li>
                  <strong>{task.title}</strong>
                  <br />
                  <code>{task.id}</code> · {task.type} · {task.priority} · {task.assignedGroup ?? 'unassigned'}
                  {task.state === 'BLOCKED' && task.blockedReason ? <div>Blocked: {task.blockedReason}</div> : null}
                  {task.gate !== 'none' ? (
                    <div>
                      Gate {task.gate}: <Badge value={task.gateStatus ?? 'open'} />
                      {gates.map((g) => (
                        <div>
                          {g.decision} by {g.actor} at {iso(g.createdAt)}
                          {g.reason ? ` (${g.reason})` : ''}
                        </div>
                      ))}
                    </div>
                  ) : null}
                  {dispatches.length > 0 ? (
                    <div>
                      Dispatches:{' '}
                      {dispatches.map((d) => (
                        <div>
                          {d.kind} to {d.group} → {d.targetState}: {d.status}
                          {d.ackedAt ? ` (acked ${iso(d.ackedAt)})` : ''}
                        </div>
                      ))}
                    </div>
                  ) : null}
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </Page>
  );
}
