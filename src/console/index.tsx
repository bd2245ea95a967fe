/** @jsxImportSource hono/jsx */
/**
 * The web console at `/console`: server-rendered HTML (`hono/jsx`) and plain forms, for operators
 * and auditors. Sign-in turns a pasted bearer token into a session cookie (session.ts); every page
 * then reads through the broker's own `/v1` routes in-process with that token (api.ts), so what a
 * role may see or change is exactly what the API lets it — an auditor's revoke is the API's 403.
 * The kernel board reads the kernel's store directly (its routes serve agent groups only), and the
 * audit status reads the chain and the signed checkpoints. No script, no external asset: every
 * page carries a strict Content-Security-Policy and the stylesheet is `GET /console/style.css`.
 */
import { Hono, type Context } from 'hono';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { TaskStore } from '../modules/kernel/store.js';
import { TASK_STATES } from '../modules/kernel/model.js';
import { ChainChecker } from '../platform/audit/chain.js';
import { readCheckpoints, type Checkpoint } from '../platform/audit/checkpoints.js';
import { chainHeadOf, verifyChainOf } from '../platform/audit/source.js';
import type { Clock } from '../platform/clock.js';
import type { Database } from '../platform/db/database.js';
import { callApi, query, type InProcessApp } from './api.js';
import { AuditPage, type AuditFilters, type ChainStatus } from './audit.js';
import { CallPage, CallsPage, narrowCalls, ProblemPage, type CallFilters } from './calls.js';
import { ApprovalsPage, GrantPage, GrantsPage, type CallSummaryView, type GrantFilters, type GrantView } from './grants.js';
import { HomePage, LoginPage, RefusedPage } from './pages.js';
import { csrfKey, endSession, loginCookie, loginNonce, readSession, sameSecret, startSession, type Session, type VerifyToken } from './session.js';
import { CONSOLE_CSS } from './style.js';
import { SwitchesPage, type SwitchView } from './switches.js';
import { TasksPage, type BoardTask } from './tasks.js';

/** What the console runs on (the broker's `Deps` satisfies it). */
export interface ConsoleDeps {
  tokens: { verify: VerifyToken };
  tasks: TaskStore;
  /** The database the audit trail is read from (either engine). */
  database: Database;
  clock: Clock;
  config: { checkpointDir: string };
}

type ConsoleEnv = { Variables: { session: Session } };

/** The console's Content-Security-Policy: nothing but same-origin styles, images and form posts. */
export const CONSOLE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Paths under `/console` served without a session. */
const OPEN_PATHS = new Set(['/console/login', '/console/style.css']);

/**
 * The console's routes, to mount with `app.route('/console', consoleRoutes(deps, app))`; `app` is
 * the broker's own app, which the pages call in-process with the session's token.
 */
export function consoleRoutes(deps: ConsoleDeps, app: InProcessApp): Hono<ConsoleEnv> {
  const r = new Hono<ConsoleEnv>();
  const key = csrfKey();
  // TokenService.verify is a method: call it on its object.
  const originCheck = csrf();

  r.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      xFrameOptions: 'DENY',
      referrerPolicy: 'no-referrer',
      crossOriginResourcePolicy: 'same-origin',
      crossOriginOpenerPolicy: 'same-origin',
    }),
    async (c, next) => {
      c.header('Cache-Control', 'no-store');
      // hono/csrf: a form post whose Origin (or Sec-Fetch-Site) is not this origin is refused.
      try {
        await originCheck(c, async () => {});
      } catch (err) {
        if (err instanceof HTTPException) return c.html(<RefusedPage session={null} reason="Refused: the form was not posted from this console (Origin check)." />, 403);
        throw err;
      }
      if (OPEN_PATHS.has(c.req.path)) return next();
      const session = await readSession(c, key, (token) => deps.tokens.verify(token));
      if (session === null) {
        if (c.req.method === 'GET' || c.req.method === 'HEAD') return c.redirect('/console/login', 303);
        return c.html(<RefusedPage session={null} reason="Refused: you are not signed in (or your token expired or was revoked)." />, 401);
      }
      c.set('session', session);
      if (c.req.method === 'POST') {
        const form = await c.req.parseBody();
        const sent = typeof form['_csrf'] === 'string' ? form['_csrf'] : undefined;
        if (!sameSecret(sent, session.csrf)) return c.html(<RefusedPage session={session} reason="Refused: the form's CSRF token is missing or wrong. Reload the page and try again." />, 403);
      }
      return next();
    },
  );

  r.get('/style.css', (c) => c.body(CONSOLE_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' }));

  r.get('/login', (c) => c.html(<LoginPage nonce={loginNonce(c)} />));
  r.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const nonce = typeof form['_csrf'] === 'string' ? form['_csrf'] : undefined;
    if (!sameSecret(nonce, loginCookie(c))) return c.html(<RefusedPage session={null} reason="Refused: the sign-in form's CSRF token is missing or wrong. Reload the sign-in page." />, 403);
    const token = typeof form['token'] === 'string' ? form['token'].trim() : '';
    try {
      if (token === '' || token.length > 4096) throw new Error('empty');
      const claims = await deps.tokens.verify(token);
      startSession(c, token, claims, deps.clock.now());
      return c.redirect('/console', 303);
    } catch {
      return c.html(<LoginPage nonce={loginNonce(c)} error="That token does not verify (unknown, expired or revoked)." />, 401);
    }
  });
  r.post('/logout', (c) => {
    endSession(c);
    return c.redirect('/console/login', 303);
  });

  r.get('/', (c) => c.html(<HomePage session={c.var.session} />));

  r.get('/grants', async (c) => {
    const s = c.var.session;
    const f: GrantFilters = { group: c.req.query('group'), provider: c.req.query('provider'), status: c.req.query('status'), at: c.req.query('at') };
    const res = await callApi<{ data: GrantView[] }>(app, s.token, 'GET', `/v1/grants${query({ ...f, limit: 500 })}`);
    if (!res.ok) return c.html(<GrantsPage session={s} filters={f} grants={[]} problem={res} />, res.status as 400);
    return c.html(<GrantsPage session={s} filters={f} grants={res.body.data} />);
  });

  const grantPage = async (c: Context<ConsoleEnv>, id: string, extra: { notice?: string; problem?: { status: number; body: unknown } }, status = 200) => {
    const s = c.var.session;
    const res = await callApi<GrantView>(app, s.token, 'GET', `/v1/grants/${encodeURIComponent(id)}`);
    if (!res.ok) return c.html(<ProblemPage session={s} title={`Grant ${id}`} status={res.status} body={res.body} />, res.status as 404);
    const calls = await callApi<{ data: CallSummaryView[] }>(app, s.token, 'GET', `/v1/calls${query({ group: res.body.group, limit: 1000 })}`);
    const under = calls.ok ? calls.body.data.filter((x) => x.grant_id === id) : [];
    return c.html(<GrantPage session={s} grant={res.body} calls={under} {...extra} />, status as 200);
  };
  r.get('/grants/:id', (c) => grantPage(c, c.req.param('id'), c.req.query('revoked') === '1' ? { notice: 'The grant was revoked.' } : {}));
  r.get('/grants/:id/grant.json', async (c) => {
    const id = c.req.param('id');
    const res = await callApi(app, c.var.session.token, 'GET', `/v1/grants/${encodeURIComponent(id)}`);
    const headers: Record<string, string> = { 'Content-Type': res.ok ? 'application/json' : 'application/problem+json' };
    if (res.ok) headers['Content-Disposition'] = `attachment; filename="${id.replace(/[^A-Za-z0-9_-]/g, '')}.json"`;
    return c.body(JSON.stringify(res.body, null, 2), res.status as 200, headers);
  });
  r.post('/grants/:id/revoke', async (c) => {
    const id = c.req.param('id');
    const form = await c.req.parseBody();
    const reason = typeof form['reason'] === 'string' ? form['reason'] : '';
    const idem = typeof form['idempotency_key'] === 'string' && form['idempotency_key'] !== '' ? form['idempotency_key'] : undefined;
    // The API decides: an auditor's token is refused 403 there, exactly as over HTTP.
    const res = await callApi(app, c.var.session.token, 'POST', `/v1/grants/${encodeURIComponent(id)}/revoke`, { reason }, idem);
    if (res.ok) return c.redirect(`/console/grants/${encodeURIComponent(id)}?revoked=1`, 303);
    return grantPage(c, id, { problem: res }, res.status);
  });

  r.get('/approvals', async (c) => {
    const s = c.var.session;
    const res = await callApi<{ data: GrantView[] }>(app, s.token, 'GET', `/v1/grants${query({ status: 'pending_approval', limit: 500 })}`);
    if (!res.ok) return c.html(<ApprovalsPage session={s} grants={[]} problem={res} />, res.status as 400);
    // Active L3 grants with a renewal waiting for its two approvals (the list shows `renewal`).
    const active = await callApi<{ data: GrantView[] }>(app, s.token, 'GET', `/v1/grants${query({ status: 'active', limit: 500 })}`);
    const renewals = active.ok ? active.body.data.filter((g) => g.renewal !== null) : [];
    return c.html(<ApprovalsPage session={s} grants={res.body.data} renewals={renewals} />);
  });

  r.get('/calls', async (c) => {
    const s = c.var.session;
    const f: CallFilters = { group: c.req.query('group'), action: c.req.query('action'), status: c.req.query('status'), from: c.req.query('from'), to: c.req.query('to') };
    const res = await callApi<{ data: CallSummaryView[] }>(app, s.token, 'GET', `/v1/calls${query({ group: f.group, status: f.status, limit: 1000 })}`);
    if (!res.ok) return c.html(<CallsPage session={s} filters={f} calls={[]} problem={res} />, res.status as 400);
    return c.html(<CallsPage session={s} filters={f} calls={narrowCalls(res.body.data, f)} />);
  });
  r.get('/calls/:group/:request_id', async (c) => {
    const s = c.var.session;
    const path = `/v1/calls/${encodeURIComponent(c.req.param('group'))}/${encodeURIComponent(c.req.param('request_id'))}`;
    const res = await callApi(app, s.token, 'GET', path);
    if (!res.ok) return c.html(<ProblemPage session={s} title="Call" status={res.status} body={res.body} />, res.status as 404);
    return c.html(<CallPage session={s} call={res.body} />);
  });

  r.get('/audit', async (c) => {
    const s = c.var.session;
    const f: AuditFilters = { kind: c.req.query('kind'), actor: c.req.query('actor'), subject: c.req.query('subject'), cursor: c.req.query('cursor') };
    const status = await chainStatus(deps);
    const res = await callApi<{ data: any[]; next_cursor: string | null }>(app, s.token, 'GET', `/v1/audit${query({ ...f, limit: 100 })}`);
    if (!res.ok) return c.html(<AuditPage session={s} status={status} filters={f} rows={[]} nextCursor={null} problem={res} />, res.status as 400);
    return c.html(<AuditPage session={s} status={status} filters={f} rows={res.body.data} nextCursor={res.body.next_cursor} />);
  });

  const switchesPage = async (c: Context<ConsoleEnv>, extra: { notice?: string; problem?: { status: number; body: unknown } }, status = 200) => {
    const s = c.var.session;
    const res = await callApi<{ data: SwitchView[] }>(app, s.token, 'GET', `/v1/switches${query({ limit: 200 })}`);
    if (!res.ok) return c.html(<SwitchesPage session={s} switches={[]} problem={res} />, res.status as 400);
    return c.html(<SwitchesPage session={s} switches={res.body.data} {...extra} />, status as 200);
  };
  const field = (form: Record<string, unknown>, name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
  r.get('/switches', (c) => switchesPage(c, c.req.query('done') === 'set' ? { notice: 'The switch is set.' } : c.req.query('done') === 'cleared' ? { notice: 'The switch is cleared.' } : {}));
  r.post('/switches', async (c) => {
    const form = await c.req.parseBody();
    const target = field(form, 'target').trim();
    // The API validates scope, target and reason, and refuses an auditor with 403.
    const idem = field(form, 'idempotency_key');
    const res = await callApi(app, c.var.session.token, 'POST', '/v1/switches', { scope: field(form, 'scope'), ...(target !== '' ? { target } : {}), reason: field(form, 'reason') }, idem !== '' ? idem : undefined);
    if (res.ok) return c.redirect('/console/switches?done=set', 303);
    return switchesPage(c, { problem: res }, res.status);
  });
  r.post('/switches/:id/clear', async (c) => {
    const form = await c.req.parseBody();
    const res = await callApi(app, c.var.session.token, 'POST', `/v1/switches/${encodeURIComponent(c.req.param('id'))}/clear`, { reason: field(form, 'reason') });
    if (res.ok) return c.redirect('/console/switches?done=cleared', 303);
    return switchesPage(c, { problem: res }, res.status);
  });

  r.get('/tasks', async (c) => {
    const group = c.req.query('group') ?? '';
    const columns = [];
    for (const state of TASK_STATES) {
      const page = await deps.tasks.list({ state, limit: 50, ...(group !== '' ? { group } : {}) });
      const tasks: BoardTask[] = [];
      for (const task of page.rows) tasks.push({ task, gates: await deps.tasks.gateDecisions(task.id), dispatches: await deps.tasks.dispatchesOf(task.id) });
      columns.push({ state, tasks, more: page.hasMore });
    }
    return c.html(<TasksPage session={c.var.session} group={group} columns={columns} />);
  });

  return r;
}

/**
 * The chain's status: its head, the verdict of recomputing it from seq 1 against the signed
 * checkpoints (`verifyChain`), and the newest checkpoint with its age at the broker clock's now.
 */
export async function chainStatus(deps: Pick<ConsoleDeps, 'database' | 'clock' | 'config'>): Promise<ChainStatus> {
  let checkpoints: Checkpoint[] = [];
  let checkpointError: string | null = null;
  try {
    checkpoints = await readCheckpoints(deps.config.checkpointDir);
  } catch (err) {
    checkpointError = `checkpoints unreadable: ${(err as Error).message}`;
  }
  const newest = checkpoints.at(-1) ?? null;
  let verdict: ChainStatus['verdict'];
  try {
    const v = await verifyChainOf(deps.database, new ChainChecker(undefined, checkpoints));
    verdict = v.ok ? { ok: true, rows: v.rows } : { ok: false, reason: `seq ${v.brokenSeq}: ${v.reason}` };
  } catch (err) {
    verdict = { ok: false, reason: `the chain could not be read: ${(err as Error).message}` };
  }
  return {
    head: await chainHeadOf(deps.database),
    verdict,
    checkpoint: newest && { seq: newest.seq, hash: newest.hash, ts: newest.ts, kid: newest.kid, ageS: Math.max(0, Math.round((deps.clock.now() - Date.parse(newest.ts)) / 1000)) },
    checkpointError,
  };
}
