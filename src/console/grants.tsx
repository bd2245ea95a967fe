/** @jsxImportSource hono/jsx */
/**
 * The grant pages: the filtered list (`GET /v1/grants`), one grant with its terms, timeline and the
 * calls made under it (`GET /v1/grants/{id}`, `GET /v1/calls`), the revoke form (operators:
 * `POST /v1/grants/{id}/revoke`), and the pending L3 approvals with the offline `broker approve`
 * commands. The console never signs an approval: approvers sign on their own machine.
 */
import { randomUUID } from 'node:crypto';
import { Badge, Csrf, iso, list, Page, Problem } from './layout.js';
import type { Session } from './session.js';
import type { z } from 'zod';
import type { GrantDetailSchema, GrantSchema } from '../modules/grants/routes/schemas.js';

/**
 * A grant as `GET /v1/grants` and `GET /v1/grants/{id}` answer it: the routes' own response
 * schema (`timeline` only on one grant's answer).
 */
export type GrantView = z.infer<typeof GrantSchema> & { timeline?: z.infer<typeof GrantDetailSchema>['timeline'] };

/** The grant list's filters, as the query string holds them. */
export interface GrantFilters {
  group?: string;
  provider?: string;
  status?: string;
  at?: string;
}

const STATUSES = ['pending_approval', 'active', 'rejected', 'expired', 'revoked'];

/** `GET /console/grants`: the filter form and the table (or the API's refusal). */
export function GrantsPage(props: { session: Session; filters: GrantFilters; grants: GrantView[]; problem?: { status: number; body: unknown } }) {
  const f = props.filters;
  return (
    <Page title="Grants" session={props.session}>
      <form class="filters" method="get" action="/console/grants" aria-label="Filter grants">
        <label>
          Group
          <input name="group" value={f.group ?? ''} autocomplete="off" />
        </label>
        <label>
          Provider
          <input name="provider" value={f.provider ?? ''} autocomplete="off" />
        </label>
        <label>
          State
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
          Active at (RFC 3339)
          <input name="at" value={f.at ?? ''} placeholder="2026-12-07T09:00:00Z" autocomplete="off" />
        </label>
        <button type="submit">Filter</button>
      </form>
      {props.problem ? <Problem status={props.problem.status} body={props.problem.body} /> : <GrantTable grants={props.grants} />}
    </Page>
  );
}

function GrantTable(props: { grants: GrantView[] }) {
  if (props.grants.length === 0) return <p>No grant matches.</p>;
  return (
    <div class="table">
      <table>
        <caption class="skip">Grants, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">Grant</th>
            <th scope="col">Group</th>
            <th scope="col">Provider</th>
            <th scope="col">Level</th>
            <th scope="col">State</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {props.grants.map((g) => (
            <tr>
              <td>
                <a href={`/console/grants/${g.id}`}>{g.id}</a>
              </td>
              <td>{g.group}</td>
              <td>{g.provider}</td>
              <td>L{g.level}</td>
              <td>
                <Badge value={g.status} />
              </td>
              <td>{iso(g.created_at)}</td>
              <td>{iso(g.expires_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The terms of a grant, as a definition list. */
function Terms(props: { g: GrantView }) {
  const g = props.g;
  return (
    <dl class="terms">
      <dt>Group</dt>
      <dd>{g.group}</dd>
      <dt>Provider</dt>
      <dd>{g.provider}</dd>
      <dt>Level</dt>
      <dd>L{g.level}</dd>
      <dt>Allowed actions</dt>
      <dd>{list(g.allowed_actions, `every ${g.provider} action up to L${g.level}`)}</dd>
      <dt>Denied actions</dt>
      <dd>{list(g.denied_actions, 'none')}</dd>
      <dt>Resources</dt>
      <dd>{list(g.resources, 'any')}</dd>
      <dt>Reason</dt>
      <dd>{g.reason}</dd>
      <dt>Requested by</dt>
      <dd>{g.requested_by}</dd>
      <dt>State</dt>
      <dd>
        <Badge value={g.status} />
      </dd>
      <dt>Lifetime</dt>
      <dd>{g.ttl_s === null ? 'until revoked' : `${g.ttl_s} s after activation`}</dd>
      <dt>Expires</dt>
      <dd>{iso(g.expires_at)}</dd>
      <dt>Digest</dt>
      <dd>
        <code>{g.digest}</code>
      </dd>
    </dl>
  );
}

/** One timeline entry in words: what happened, by whom, and the approver's group for approvals. */
function event(e: NonNullable<GrantView['timeline']>[number]): string {
  const d = e.detail;
  const extra: string[] = [];
  for (const k of ['note', 'approver_group', 'decision', 'outcome', 'reason', 'rule', 'changed', 'code', 'previous_expires_at', 'expires_at']) {
    const v = d[k];
    if (v !== undefined && v !== null) extra.push(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return extra.length > 0 ? ` (${extra.join('; ')})` : '';
}

type TimelineEntry = NonNullable<GrantView['timeline']>[number];

/**
 * The grant's timeline: the audit rows `GET /v1/grants/{id}` answers, plus the moments its fields
 * record without a row of their own (an L1/L2 grant activates as it is created; expiry is a time,
 * not an event), by the broker.
 */
export function timelineOf(g: GrantView): TimelineEntry[] {
  const rows = [...(g.timeline ?? [])];
  const has = (kind: string) => rows.some((e) => e.kind === kind);
  // A derived entry sorts right after the row it follows (its seq + 0.5), or last among equal times.
  const created = rows.find((e) => e.kind === 'grant.created')?.seq ?? Number.MAX_SAFE_INTEGER;
  if (g.activated_at !== null && !has('grant.activated')) rows.push({ seq: created + 0.5, ts: g.activated_at, actor: 'broker', kind: 'grant.activated', detail: { note: 'on creation: this level needs no approval' } });
  if (g.status === 'expired' && g.expires_at !== null && !has('grant.expired')) rows.push({ seq: Number.MAX_SAFE_INTEGER, ts: g.expires_at, actor: 'broker', kind: 'grant.expired', detail: { note: 'its lifetime ended' } });
  return rows.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || a.seq - b.seq);
}

/** A call under a grant, as `GET /v1/calls` lists it. */
export interface CallSummaryView {
  request_id: string;
  group: string;
  action: string;
  resource: string;
  grant_id: string;
  status: string;
  http_status: number | null;
  created_at: string;
  task_id: string | null;
  summary: string;
}

/** `GET /console/grants/{id}`: terms, approvals, timeline, calls, and the revoke form for operators. */
export function GrantPage(props: { session: Session; grant: GrantView; calls: CallSummaryView[]; notice?: string; problem?: { status: number; body: unknown } }) {
  const g = props.grant;
  const canRevoke = props.session.claims.role === 'operator' && (g.status === 'active' || g.status === 'pending_approval');
  return (
    <Page title={`Grant ${g.id}`} session={props.session}>
      {props.notice ? (
        <p class="notice" role="status">
          {props.notice}
        </p>
      ) : null}
      {props.problem ? <Problem status={props.problem.status} body={props.problem.body} /> : null}
      <h2>Terms</h2>
      <Terms g={g} />
      <h2>Approvals</h2>
      <Approvals g={g} />
      <h2>Timeline</h2>
      <ol class="timeline" aria-label="Timeline" data-testid="timeline">
        {timelineOf(g).map((e) => (
          <li>
            <time datetime={e.ts}>{iso(e.ts)}</time> <strong>{e.kind}</strong> by {e.actor}
            {event(e)}
          </li>
        ))}
      </ol>
      <h2>Calls under this grant</h2>
      <CallsTable calls={props.calls} />
      {canRevoke ? (
        <section aria-labelledby="revoke-h">
          <h2 id="revoke-h">Revoke</h2>
          <form class="stack" method="post" action={`/console/grants/${g.id}/revoke`}>
            <Csrf session={props.session} />
            <input type="hidden" name="idempotency_key" value={randomUUID()} />
            <label for="revoke-reason">
              Reason (recorded in the audit trail)
              <textarea id="revoke-reason" name="reason" required maxlength={500}></textarea>
            </label>
            <button type="submit" class="danger">
              Revoke this grant
            </button>
          </form>
        </section>
      ) : null}
    </Page>
  );
}

function Approvals(props: { g: GrantView }) {
  const g = props.g;
  if (g.approvals_required === 0 && g.approvals.length === 0) return <p>This level needs no approval.</p>;
  return (
    <div>
      <p>
        {g.approvals.filter((a) => a.counts && a.decision === 'approve').length} of {g.approvals_required} approvals counted.
      </p>
      {g.approvals.length > 0 ? (
        <ul>
          {g.approvals.map((a) => (
            <li>
              {a.approver_id} ({a.approver_group}) {a.decision} at {iso(a.at)}
              {a.counts ? '' : ' — no longer counts (the terms changed)'}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** A table of call summaries linking to each call's receipt. */
export function CallsTable(props: { calls: CallSummaryView[] }) {
  if (props.calls.length === 0) return <p>No call.</p>;
  return (
    <div class="table">
      <table>
        <thead>
          <tr>
            <th scope="col">Call</th>
            <th scope="col">Group</th>
            <th scope="col">Action</th>
            <th scope="col">Resource</th>
            <th scope="col">Status</th>
            <th scope="col">HTTP</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {props.calls.map((c) => (
            <tr>
              <td>
                <a href={`/console/calls/${encodeURIComponent(c.group)}/${encodeURIComponent(c.request_id)}`}>{c.request_id}</a>
              </td>
              <td>{c.group}</td>
              <td>{c.action}</td>
              <td>{c.resource}</td>
              <td>
                <Badge value={c.status} />
              </td>
              <td>{c.http_status ?? '—'}</td>
              <td>{iso(c.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** What a pending grant still lacks, in words. */
function missing(g: GrantView): string {
  const counted = g.approvals.filter((a) => a.counts && a.decision === 'approve');
  const left = Math.max(0, g.approvals_required - counted.length);
  if (left === 0) return 'Nothing: it activates with the approvals it has.';
  const groups = [...new Set(counted.map((a) => a.approver_group))];
  const except = [g.group, ...groups].join(', ');
  return `${left} more approval${left === 1 ? '' : 's'}, from approvers of ${left === 1 ? 'a group' : 'distinct groups'} other than ${except}, neither ${g.requested_by} nor whoever amended the terms.`;
}

/** `GET /console/approvals`: every grant pending approval with what it lacks and the offline commands. */
export function ApprovalsPage(props: { session: Session; grants: GrantView[]; renewals?: GrantView[]; problem?: { status: number; body: unknown } }) {
  return (
    <Page title="Pending approvals" session={props.session}>
      <p>
        Approvers sign offline, on their own machine, with their own key; the console never holds one. Download the grant, sign it with <code>broker approve --grant-file</code>, and give the
        JWS to an operator to submit.
      </p>
      {props.problem ? <Problem status={props.problem.status} body={props.problem.body} /> : null}
      {props.grants.length === 0 && !props.problem ? <p>No grant awaits approval.</p> : null}
      {props.grants.map((g) => (
        <article class="card" aria-labelledby={`h-${g.id}`} data-testid="pending-grant">
          <h2 id={`h-${g.id}`}>
            <a href={`/console/grants/${g.id}`}>{g.id}</a>: {g.group} on {g.provider}, L{g.level}
          </h2>
          <Terms g={g} />
          <h3>Approvals so far</h3>
          <Approvals g={g} />
          <h3>Still missing</h3>
          <p data-testid="missing">{missing(g)}</p>
          <p>Pending until {iso(g.pending_expires_at)}.</p>
          <h3>Approve offline</h3>
          <p>
            <a href={`/console/grants/${g.id}/grant.json`} download={`${g.id}.json`}>
              Download {g.id}.json
            </a>{' '}
            (the grant exactly as <code>GET /v1/grants/{g.id}</code> answers it), then:
          </p>
          <pre data-testid="approve-command">{approveCommands(g.id)}</pre>
        </article>
      ))}
      {(props.renewals ?? []).map((g) => (
        <article class="card" aria-labelledby={`r-${g.id}`} data-testid="pending-renewal">
          <h2 id={`r-${g.id}`}>
            <a href={`/console/grants/${g.id}`}>{g.id}</a>: renewal of {g.group} on {g.provider}, L{g.level}
          </h2>
          <p>
            Active until {iso(g.expires_at)}; the renewal {g.renewal!.id} by {g.renewal!.requested_by} asks for {iso(g.renewal!.expires_at)} ({g.renewal!.reason}). It needs two
            fresh approvals of two groups over its digest <code>{g.renewal!.digest}</code>, until {iso(g.renewal!.pending_expires_at)}.
          </p>
          <p>
            <a href={`/console/grants/${g.id}/grant.json`} download={`${g.id}.json`}>
              Download {g.id}.json
            </a>{' '}
            (<code>broker approve --grant-file</code> signs the renewal's terms), then:
          </p>
          <pre data-testid="approve-command">{approveCommands(g.id)}</pre>
        </article>
      ))}
    </Page>
  );
}

/** The commands an approver runs offline (sign) and an operator runs on the broker host (submit). */
export function approveCommands(id: string): string {
  return [
    '# the approver, on their own machine (their id and key):',
    `broker approve --grant-file ${id}.json --key ~/.broker/<approver-id>.jwk > <approver-id>.jws`,
    '# the operator, on the broker host:',
    `broker approve ${id} --jws <approver-id>.jws`,
  ].join('\n');
}
