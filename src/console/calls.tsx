/** @jsxImportSource hono/jsx */
/**
 * The call pages: a search (`GET /v1/calls` filters by group and status; the console narrows the
 * page it got by action and time), and one call's decision receipt laid out step by step
 * (`GET /v1/calls/{group}/{request_id}`).
 */
import { CallsTable, type CallSummaryView } from './grants.js';
import { Badge, iso, Page, Problem } from './layout.js';
import type { Session } from './session.js';

/** The call search's filters. `from`/`to` are RFC 3339 instants (inclusive, exclusive). */
export interface CallFilters {
  group?: string;
  action?: string;
  status?: string;
  from?: string;
  to?: string;
}

const STATUSES = ['running', 'succeeded', 'failed', 'timed_out', 'unknown_outcome'];

/** Keeps the calls whose action starts with `action` and whose creation lies in [from, to). */
export function narrowCalls(calls: CallSummaryView[], f: CallFilters): CallSummaryView[] {
  const from = f.from ? Date.parse(f.from) : NaN;
  const to = f.to ? Date.parse(f.to) : NaN;
  return calls.filter((c) => {
    if (f.action && !c.action.startsWith(f.action)) return false;
    const t = Date.parse(c.created_at);
    if (!Number.isNaN(from) && t < from) return false;
    if (!Number.isNaN(to) && t >= to) return false;
    return true;
  });
}

/** `GET /console/calls`. */
export function CallsPage(props: { session: Session; filters: CallFilters; calls: CallSummaryView[]; problem?: { status: number; body: unknown } }) {
  const f = props.filters;
  return (
    <Page title="Calls" session={props.session}>
      <form class="filters" method="get" action="/console/calls" aria-label="Search calls">
        <label>
          Group
          <input name="group" value={f.group ?? ''} autocomplete="off" />
        </label>
        <label>
          Action (prefix)
          <input name="action" value={f.action ?? ''} placeholder="github." autocomplete="off" />
        </label>
        <label>
          Status
          <select name="status">
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s} selected={f.status === s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          From (RFC 3339)
          <input name="from" value={f.from ?? ''} autocomplete="off" />
        </label>
        <label>
          To (RFC 3339)
          <input name="to" value={f.to ?? ''} autocomplete="off" />
        </label>
        <button type="submit">Search</button>
      </form>
      <p>The newest 1000 calls matching group and status, narrowed by action and time.</p>
      {props.problem ? <Problem status={props.problem.status} body={props.problem.body} /> : <CallsTable calls={props.calls} />}
    </Page>
  );
}

/** A call with its receipt, as `GET /v1/calls/{group}/{request_id}` answers it. */
export interface CallView extends CallSummaryView {
  level: number;
  attempts: number;
  finished_at: string | null;
  duration_ms: number | null;
  receipt: { decision: string; code: string | null; decided_at: string; grant_id: string | null; task_id: string | null; steps: Array<{ step: string; result: string; note?: string }> };
  response: Record<string, unknown> | null;
}

/** `GET /console/calls/{group}/{request_id}`: the call and its receipt, one step per line. */
export function CallPage(props: { session: Session; call: CallView }) {
  const c = props.call;
  const r = c.receipt;
  return (
    <Page title={`Call ${c.request_id}`} session={props.session}>
      <dl class="terms">
        <dt>Group</dt>
        <dd>{c.group}</dd>
        <dt>Action</dt>
        <dd>
          {c.action} (L{c.level})
        </dd>
        <dt>Resource</dt>
        <dd>{c.resource}</dd>
        <dt>Summary</dt>
        <dd>{c.summary}</dd>
        <dt>Grant</dt>
        <dd>{r.grant_id ? <a href={`/console/grants/${r.grant_id}`}>{r.grant_id}</a> : '—'}</dd>
        <dt>Task</dt>
        <dd>{c.task_id ?? '—'}</dd>
        <dt>Status</dt>
        <dd>
          <Badge value={c.status} /> HTTP {c.http_status ?? '—'}, {c.attempts} attempt(s)
        </dd>
        <dt>Created</dt>
        <dd>{iso(c.created_at)}</dd>
        <dt>Finished</dt>
        <dd>
          {iso(c.finished_at)}
          {c.duration_ms !== null ? ` (${c.duration_ms} ms)` : ''}
        </dd>
      </dl>
      <h2>Receipt</h2>
      <p>
        Decision <Badge value={r.decision} />
        {r.code ? (
          <span>
            {' '}
            with <code>{r.code}</code>
          </span>
        ) : null}{' '}
        at {iso(r.decided_at)}.
      </p>
      <ol class="steps" aria-label="Decision steps">
        {r.steps.map((s) => (
          <li>
            <strong>{s.step}</strong> <Badge value={s.result} />
            {s.note ? ` ${s.note}` : ''}
          </li>
        ))}
      </ol>
      <h2>Answer</h2>
      <pre>{c.response === null ? 'none yet' : JSON.stringify(c.response, null, 2)}</pre>
    </Page>
  );
}

/** A page showing only an API refusal (a call or grant that could not be read). */
export function ProblemPage(props: { session: Session; title: string; status: number; body: unknown }) {
  return (
    <Page title={props.title} session={props.session}>
      <Problem status={props.status} body={props.body} />
    </Page>
  );
}
