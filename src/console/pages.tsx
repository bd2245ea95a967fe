/** @jsxImportSource hono/jsx */
/** The console's sign-in page, its home page, and the page for a refused form. */
import { Csrf, Page } from './layout.js';
import type { Session } from './session.js';

/** `GET /console/login`: paste a bearer token once. `error` is why the last attempt failed. */
export function LoginPage(props: { nonce: string; error?: string }) {
  return (
    <Page title="Sign in" session={null}>
      <p>Paste an operator or auditor bearer token (<code>broker token --role auditor --subject you</code>). It is kept in an HttpOnly cookie until it expires; it is never shown again.</p>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
      <form class="stack" method="post" action="/console/login">
        <input type="hidden" name="_csrf" value={props.nonce} />
        <label for="token">
          Bearer token
          <textarea id="token" name="token" required autocomplete="off" spellcheck={false}></textarea>
        </label>
        <button type="submit">Sign in</button>
      </form>
    </Page>
  );
}

/** `GET /console`: what each page is for. */
export function HomePage(props: { session: Session }) {
  const operator = props.session.claims.role === 'operator';
  return (
    <Page title="Broker console" session={props.session}>
      <p>
        You are signed in as an {props.session.claims.role}: {operator ? 'you may read everything and revoke grants.' : 'you may read everything and change nothing.'}
      </p>
      <ul>
        <li>
          <a href="/console/grants">Grants</a>: filter by group, provider, state and time; each grant's terms, timeline and calls.
        </li>
        <li>
          <a href="/console/approvals">Pending approvals</a>: L3 grants awaiting approvers, with the offline <code>broker approve</code> commands.
        </li>
        <li>
          <a href="/console/calls">Calls</a>: search calls; each call's decision receipt step by step.
        </li>
        <li>
          <a href="/console/audit">Audit</a>: the chain's status and the trail.
        </li>
        <li>
          <a href="/console/tasks">Tasks</a>: the kernel board with gates and dispatches.
        </li>
        <li>
          <a href="/console/switches">Kill switches</a>: stop all external calls, a group, a provider or an action, and clear them.
        </li>
      </ul>
      <form method="post" action="/console/logout">
        <Csrf session={props.session} />
        <button type="submit">Sign out</button>
      </form>
    </Page>
  );
}

/** A refused form post (CSRF, or no session), with what to do. */
export function RefusedPage(props: { session: Session | null; reason: string }) {
  return (
    <Page title="Refused" session={props.session}>
      <p class="error" role="alert">
        {props.reason}
      </p>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </Page>
  );
}
