/** @jsxImportSource hono/jsx */
/**
 * The audit page: the chain's status (the head, whether the whole chain verifies against the
 * signed checkpoints, the newest checkpoint and its age) and a paged, filterable trail
 * (`GET /v1/audit`).
 */
import { iso, Page, Problem } from './layout.js';
import type { Session } from './session.js';

/** The chain's status as the page shows it. */
export interface ChainStatus {
  /** The newest row, or null for an empty trail. */
  head: { seq: number; hash: string; ts: string } | null;
  /** The verdict of recomputing the chain from seq 1 (with the checkpoints), or why it could not be checked. */
  verdict: { ok: true; rows: number } | { ok: false; reason: string };
  /** The newest signed checkpoint whose signature verified, with its age in seconds at `nowMs`. */
  checkpoint: { seq: number; hash: string; ts: string; kid: string; ageS: number } | null;
  /** Why checkpoints could not be read (a file that does not verify), else null. */
  checkpointError: string | null;
}

/** The trail's filters and position. */
export interface AuditFilters {
  kind?: string;
  actor?: string;
  subject?: string;
  cursor?: string;
}

/** One audit row as `GET /v1/audit` answers it. */
export interface AuditRow {
  seq: number;
  ts: string;
  actor: string;
  kind: string;
  subject: string;
  detail: Record<string, unknown>;
  hash: string;
}

/** `GET /console/audit`. */
export function AuditPage(props: { session: Session; status: ChainStatus; filters: AuditFilters; rows: AuditRow[]; nextCursor: string | null; problem?: { status: number; body: unknown } }) {
  const s = props.status;
  const f = props.filters;
  const next = new URLSearchParams();
  for (const [k, v] of Object.entries({ kind: f.kind, actor: f.actor, subject: f.subject })) if (v) next.set(k, v);
  if (props.nextCursor) next.set('cursor', props.nextCursor);
  return (
    <Page title="Audit" session={props.session}>
      <h2>Chain status</h2>
      <dl class="terms" data-testid="chain-status">
        <dt>Verified</dt>
        <dd>{s.verdict.ok ? `yes: ${s.verdict.rows} rows recomputed from seq 1` : `NO: ${s.verdict.reason}`}</dd>
        <dt>Head</dt>
        <dd>
          {s.head ? (
            <span>
              seq {s.head.seq}, <code>{s.head.hash}</code>, {iso(s.head.ts)}
            </span>
          ) : (
            'empty trail'
          )}
        </dd>
        <dt>Newest signed checkpoint</dt>
        <dd>
          {s.checkpoint ? (
            <span>
              seq {s.checkpoint.seq}, <code>{s.checkpoint.hash}</code>, signed {iso(s.checkpoint.ts)} by key <code>{s.checkpoint.kid}</code>, {s.checkpoint.ageS} s ago
            </span>
          ) : (
            (s.checkpointError ?? 'none yet')
          )}
        </dd>
      </dl>
      <h2>Trail</h2>
      <form class="filters" method="get" action="/console/audit" aria-label="Filter the trail">
        <label>
          Kind (exact, or a prefix ending in .*)
          <input name="kind" value={f.kind ?? ''} placeholder="grant.*" autocomplete="off" />
        </label>
        <label>
          Actor
          <input name="actor" value={f.actor ?? ''} autocomplete="off" />
        </label>
        <label>
          Subject
          <input name="subject" value={f.subject ?? ''} autocomplete="off" />
        </label>
        <button type="submit">Filter</button>
      </form>
      {props.problem ? (
        <Problem status={props.problem.status} body={props.problem.body} />
      ) : (
        <div class="table">
          <table>
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">Time</th>
                <th scope="col">Kind</th>
                <th scope="col">Actor</th>
                <th scope="col">Subject</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {props.rows.map((r) => (
                <tr>
                  <td>{r.seq}</td>
                  <td>{iso(r.ts)}</td>
                  <td>{r.kind}</td>
                  <td>{r.actor}</td>
                  <td>{r.subject.startsWith('grt_') ? <a href={`/console/grants/${r.subject}`}>{r.subject}</a> : r.subject}</td>
                  <td>
                    <code>{JSON.stringify(r.detail)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {props.nextCursor ? (
        <p>
          <a href={`/console/audit?${next.toString()}`} rel="next">
            Next page
          </a>
        </p>
      ) : null}
    </Page>
  );
}
