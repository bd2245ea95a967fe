/** @jsxImportSource hono/jsx */
/**
 * The kill switches (`GET /console/switches`): the active switches with a clear form each, the
 * form that sets one (all external calls, one group, one provider or one action, with a reason),
 * and the cleared ones below. The forms post to the broker's own `/v1/switches` routes with the
 * session's token, so an auditor sees the page and its changes are the API's 403.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { SwitchSchema } from '../modules/switches/routes/schemas.js';
import { SWITCH_SCOPES } from '../modules/switches/service.js';
import { Badge, Csrf, iso, Page, Problem } from './layout.js';
import type { Session } from './session.js';

/** A kill switch as `GET /v1/switches` answers it. */
export type SwitchView = z.infer<typeof SwitchSchema>;

/** What each scope's target names, for the form's hint. */
const TARGET_HINT = 'For a group, provider or action scope: its name (e.g. developer, github, github.merge_pull). Empty for all.';

/**
 * `GET /console/switches`: active and cleared switches; operators get the set and clear forms.
 * @param problem an API refusal to show above the forms (e.g. an auditor's 403).
 */
export function SwitchesPage(props: { session: Session; switches: SwitchView[]; notice?: string; problem?: { status: number; body: unknown } }) {
  const operator = props.session.claims.role === 'operator';
  const active = props.switches.filter((s) => s.active);
  const cleared = props.switches.filter((s) => !s.active);
  return (
    <Page title="Kill switches" session={props.session}>
      {props.notice ? (
        <p class="notice" role="status">
          {props.notice}
        </p>
      ) : null}
      {props.problem ? <Problem status={props.problem.status} body={props.problem.body} /> : null}
      <p>
        A switch refuses matching external calls with 503 <code>disabled_by_operator</code> from the next request on, in every broker process, until it is
        cleared. It does not touch grants.
      </p>
      <section aria-labelledby="active-h">
        <h2 id="active-h">Active ({active.length})</h2>
        {active.length === 0 ? <p>No switch is set: calls flow.</p> : <SwitchTable rows={active} session={props.session} clearable={operator} />}
      </section>
      {operator ? (
        <section aria-labelledby="set-h">
          <h2 id="set-h">Set a switch</h2>
          <form method="post" action="/console/switches" class="stack">
            <Csrf session={props.session} />
            {/* A second submission of this same form replays the first switch instead of setting another. */}
            <input type="hidden" name="idempotency_key" value={randomUUID()} />
            <label>
              Scope
              <select name="scope" required>
                {SWITCH_SCOPES.map((s) => (
                  <option value={s}>{s}</option>
                ))}
              </select>
            </label>
            <label>
              Target
              <input name="target" autocomplete="off" aria-describedby="target-hint" maxlength={200} />
            </label>
            <small id="target-hint">{TARGET_HINT}</small>
            <label>
              Reason
              <input name="reason" required maxlength={2000} autocomplete="off" />
            </label>
            <button type="submit">Set switch</button>
          </form>
        </section>
      ) : (
        <p>Auditors see the switches; setting or clearing one needs an operator token.</p>
      )}
      <section aria-labelledby="cleared-h">
        <h2 id="cleared-h">Cleared ({cleared.length})</h2>
        {cleared.length === 0 ? <p>None.</p> : <SwitchTable rows={cleared} session={props.session} clearable={false} />}
      </section>
    </Page>
  );
}

function SwitchTable(props: { rows: SwitchView[]; session: Session; clearable: boolean }) {
  return (
    <div class="table">
      <table>
        <thead>
          <tr>
            <th scope="col">Switch</th>
            <th scope="col">Scope</th>
            <th scope="col">Target</th>
            <th scope="col">Reason</th>
            <th scope="col">Set</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((s) => (
            <tr data-testid={`switch-${s.id}`}>
              <td>
                <code>{s.id}</code>
              </td>
              <td>{s.scope}</td>
              <td>{s.target ?? 'every external call'}</td>
              <td>{s.reason}</td>
              <td>
                {s.set_by}, {iso(s.since)}
              </td>
              <td>
                <Badge value={s.active ? 'active' : 'cleared'} />
                {s.cleared_at ? ` by ${s.cleared_by ?? '—'} at ${iso(s.cleared_at)}${s.clear_reason ? ` (${s.clear_reason})` : ''}` : null}
                {props.clearable ? (
                  <form method="post" action={`/console/switches/${s.id}/clear`} class="stack">
                    <Csrf session={props.session} />
                    <label>
                      Reason to clear <code>{s.id}</code>
                      <input name="reason" required maxlength={2000} autocomplete="off" />
                    </label>
                    <button type="submit">Clear</button>
                  </form>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
