/** @jsxImportSource hono/jsx */
/**
 * The console's page frame and small shared pieces: the document head (viewport, the one
 * stylesheet), a skip link, the navigation, who is signed in with a sign-out form, and the
 * rendering of an API problem. Pages are plain HTML: no script, so the CSP forbids all scripts.
 */
import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import type { Session } from './session.js';

/** The navigation, in the order the console's pages are listed. */
const NAV: ReadonlyArray<[string, string]> = [
  ['/console/grants', 'Grants'],
  ['/console/approvals', 'Pending approvals'],
  ['/console/calls', 'Calls'],
  ['/console/audit', 'Audit'],
  ['/console/tasks', 'Tasks'],
  ['/console/switches', 'Kill switches'],
];

/** A whole page: `<title>` is `title · Broker console`; `session` null on the sign-in page. */
export function Page(props: { title: string; session: Session | null; children?: Child }) {
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · Broker console`}</title>
        <link rel="stylesheet" href="/console/style.css" />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header>
          <a href="/console">
            <strong>Broker console</strong>
          </a>
          {props.session && (
            <nav aria-label="Console">
              <ul>
                {NAV.map(([href, label]) => (
                  <li>
                    <a href={href}>{label}</a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {props.session && (
            <div class="who">
              Signed in as <span data-testid="who">{props.session.claims.subject}</span> ({props.session.claims.role}), until {iso(props.session.claims.expiresAt)}.{' '}
              <form method="post" action="/console/logout">
                <Csrf session={props.session} />
                <button type="submit" class="link">
                  Sign out
                </button>
              </form>
            </div>
          )}
        </header>
        <main id="main">
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
      </html>
    </>
  );
}

/** The hidden per-session CSRF field every form carries. */
export function Csrf(props: { session: Session }) {
  return <input type="hidden" name="_csrf" value={props.session.csrf} />;
}

/** An API problem (RFC 9457 body) as an alert: its status, code and detail. */
export function Problem(props: { status: number; body: any }) {
  const b = (props.body ?? {}) as { title?: string; code?: string; detail?: string };
  return (
    <div class="error" role="alert">
      <strong>
        {props.status} {b.title ?? 'Error'}
      </strong>
      {b.code ? (
        <span>
          {' '}
          (<code>{b.code}</code>)
        </span>
      ) : null}
      {b.detail ? <p>{b.detail}</p> : null}
    </div>
  );
}

/** A status word as a badge (its CSS class is the word). */
export function Badge(props: { value: string | null | undefined }) {
  const v = props.value ?? '—';
  return <span class={`badge ${v === 'skip' ? 'skip-step' : v}`}>{v}</span>;
}

/** Unix ms, or an RFC 3339 string, as RFC 3339 UTC to the second; '—' for null. */
export function iso(t: number | string | null | undefined): string {
  if (t === null || t === undefined) return '—';
  const d = typeof t === 'number' ? new Date(t) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A list of patterns, or what null means. */
export function list(v: string[] | null | undefined, none: string): string {
  return v === null || v === undefined ? none : v.join(', ');
}
