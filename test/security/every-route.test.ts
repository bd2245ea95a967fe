/**
 * One security suite run against EVERY route the app serves (the unkey `apps/api` pattern).
 *
 * The routes come from the app itself (`createApp(deps).routes`, Hono's `{method, path, handler}`
 * list, with `app.use` middleware as method `ALL`). Each one must be classified in {@link ROUTES}
 * below: the suite fails when the app serves a route the table does not classify, or the table
 * lists a route the app no longer serves, so a route added tomorrow cannot skip these checks.
 *
 * Every non-public route then gets the same checks through a real server on an ephemeral port
 * (one broker for the file), with its path parameters filled with plausible but unknown values:
 * every refusal below must come from the authentication layer, before any handler looks an id up.
 *
 * - no credentials → 401 `signature_missing` (HEAD too, for GET routes);
 * - a valid signature over another path, query, body or Idempotency-Key → 401 `signature_invalid`
 *   / `digest_mismatch`;
 * - `created` outside `BROKER_CLOCK_SKEW_S` (past and future) → 401 `signature_expired`;
 * - an unknown key id, or an unknown version of a real group → 401 `unknown_key`;
 * - `Authorization: Bearer garbage`, another scheme, or garbage beside a valid signature → 401
 *   `unauthorized` with a `WWW-Authenticate: Bearer …` challenge;
 * - the wrong kind of principal (a token on a group route, a group on a token route, a role or a
 *   group the route does not serve) → 403 `forbidden`;
 * - for body methods (`BODY_METHODS`), as each principal the route serves: no or a malformed
 *   `Idempotency-Key` → 400 `idempotency_key_missing`; a body over `BROKER_BODY_LIMIT_BYTES`
 *   (declared by Content-Length, or chunked) → 413 `payload_too_large`; malformed JSON, or JSON
 *   with a lone UTF-16 surrogate (not I-JSON, RFC 7493) → 400 `malformed_json`;
 * - a control: each principal the route serves gets past authentication (so the refusals above
 *   are not 404s from a mistyped sample path).
 *
 * Every error answer is checked the same way ({@link expectProblem}): `application/problem+json`,
 * `{type, title, status, code, detail, instance}` with `status` the HTTP status and `code` one of
 * `ERROR_STATUS` with that status, no stack trace or file path, and an `X-Request-Id` header.
 * Every refusal is checked to write nothing: neither an audit row (`gov_activities`) nor any row at
 * all (SQLite `total_changes()` on the broker's connection), except the refusals the broker audits
 * by design (see {@link AUDITED_BY_DESIGN}).
 *
 * Public routes answer without credentials and never echo a credential sent to them (body,
 * headers, `/metrics`, logs).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/app.js';
import { TOKEN_ROUTE_PREFIXES } from '../../src/app/authenticate.js';
import { signRequest, type GroupCredential } from '../../src/client/index.js';
import { ERROR_STATUS, type ErrorCode } from '../../src/platform/http/problem.js';
import { BODY_METHODS } from '../../src/protocol/profile.js';
import { tokenFor } from '../grants/helpers.js';
import { REPO_ROOT, startBroker } from '../helpers/harness.js';

// ---------------------------------------------------------------------------------------------
// The route table: every route the app serves, and who may call it at the authentication layer.
// ---------------------------------------------------------------------------------------------

/**
 * Who a route serves, as the authentication layer (`authenticate`, `TOKEN_ROUTE_PREFIXES`,
 * `requirePrincipal`/`requireRole`, and the handlers' own `principal.type` guards) decides it:
 * - `public`: no credentials (outside `/v1/*`);
 * - `group`: RFC 9421-signed agent groups only, any group (handlers may narrow further, e.g.
 *   `POST /v1/tasks` is main's; that is per-capability logic, tested with each capability);
 * - `token:<roles>`: operator/auditor bearer tokens with one of these roles only, never a group;
 * - `main+operator`: the `main` group or an operator token (`GRANTORS`), nobody else;
 * - `group+token:operator,auditor`: any agent group (the handler narrows it to the group's own
 *   rows) and operator/auditor tokens;
 * - `console`: the web console (src/console/), outside `/v1/*`: its own session cookie, never a
 *   bearer header or a signature; `CONSOLE_OPEN` routes answer without one.
 */
type Access = 'console' | 'public' | 'group' | 'token:operator' | 'token:operator,auditor' | 'main+operator' | 'group+token:operator,auditor';

const ROUTES: Readonly<Record<string, Access>> = {
  // src/app/probes.ts
  'GET /health': 'public',
  'GET /ready': 'public',
  'GET /metrics': 'public',
  // src/app/reference.ts
  'GET /openapi.json': 'public',
  'GET /docs': 'public',
  'GET /docs/scalar.js': 'public',
  // src/modules/identity/index.ts
  'GET /v1/whoami': 'group',
  // src/modules/grants/index.ts (GRANTORS, GRANT_READERS in src/modules/grants/access.ts)
  'POST /v1/grants': 'main+operator',
  'GET /v1/grants': 'token:operator,auditor',
  'GET /v1/grants/:id': 'token:operator,auditor',
  'PATCH /v1/grants/:id': 'main+operator',
  'POST /v1/grants/:id/revoke': 'main+operator',
  'POST /v1/grants/:id/approvals': 'main+operator',
  'POST /v1/grants/:id/renew': 'main+operator',
  // src/modules/grant-requests/index.ts (access.ts there: agent groups ask, GRANTORS decide, GRANT_READERS read)
  'POST /v1/grant-requests': 'group',
  'GET /v1/grant-requests': 'token:operator,auditor',
  'GET /v1/grant-requests/:id': 'group+token:operator,auditor',
  'POST /v1/grant-requests/:id/approve': 'main+operator',
  'POST /v1/grant-requests/:id/deny': 'main+operator',
  // src/modules/audit/index.ts
  'GET /v1/audit': 'token:operator,auditor',
  // src/modules/tokens/index.ts
  'POST /v1/tokens/revocations': 'token:operator',
  'GET /v1/tokens/revocations': 'token:operator,auditor',
  // src/modules/kernel/index.ts
  'POST /v1/tasks': 'group',
  'GET /v1/tasks': 'group',
  'GET /v1/tasks/:id': 'group',
  'PATCH /v1/tasks/:id': 'group',
  'GET /v1/tasks/:id/context': 'group',
  'POST /v1/tasks/:id/transition': 'group',
  'POST /v1/tasks/:id/gate': 'group',
  'POST /v1/tasks/:id/override': 'group',
  'PATCH /v1/tasks/:id/dod': 'group',
  'GET /v1/dispatches': 'group',
  'POST /v1/dispatches/:id/ack': 'group',
  // src/modules/calls/index.ts
  'POST /v1/ext/calls': 'group',
  'GET /v1/ext/calls': 'group',
  'GET /v1/ext/calls/:request_id': 'group',
  'GET /v1/ext/capabilities': 'group',
  'GET /v1/calls': 'token:operator,auditor',
  'GET /v1/calls/:group/:request_id': 'token:operator,auditor',
  'GET /v1/limits': 'token:operator,auditor',
  'POST /v1/calls/:group/:request_id/approvals': 'main+operator',
  // src/modules/runner/index.ts
  'GET /v1/runs': 'token:operator,auditor',
  'GET /v1/runs/:id': 'token:operator,auditor',
  'POST /v1/runs/:id/cancel': 'token:operator',
  // src/modules/switches/index.ts
  'GET /v1/switches': 'token:operator,auditor',
  'POST /v1/switches': 'token:operator',
  'POST /v1/switches/:id/clear': 'token:operator',
  // src/modules/webhooks/index.ts
  'GET /v1/webhooks/deliveries': 'token:operator,auditor',
  'POST /v1/webhooks/deliveries/:id/retry': 'token:operator',
  // src/console/index.tsx (the console's session: src/console/session.ts)
  'GET /console/style.css': 'console',
  'GET /console/login': 'console',
  'POST /console/login': 'console',
  'POST /console/logout': 'console',
  'GET /console': 'console',
  'GET /console/grants': 'console',
  'GET /console/grants/:id': 'console',
  'GET /console/grants/:id/grant.json': 'console',
  'POST /console/grants/:id/revoke': 'console',
  'GET /console/approvals': 'console',
  'GET /console/calls': 'console',
  'GET /console/calls/:group/:request_id': 'console',
  'GET /console/audit': 'console',
  'GET /console/tasks': 'console',
  'GET /console/switches': 'console',
  'POST /console/switches': 'console',
  'POST /console/switches/:id/clear': 'console',
};

/** Console routes served without a session: the stylesheet and the sign-in form. */
const CONSOLE_OPEN: readonly string[] = ['GET /console/style.css', 'GET /console/login', 'POST /console/login'];

/**
 * The app's `ALL` entries (`app.use` middleware, or an `app.all` route). Known middleware only: a
 * new one (or an `app.all` route, which would answer every method) must be looked at and listed.
 */
const MIDDLEWARE: readonly string[] = [
  'ALL /*', // request id, body limit, X-Request-Id, metrics, request log
  'ALL /v1/*', // authenticate(): bearer token or RFC 9421 group signature
  'ALL /console/*', // the console: security headers, the Origin check (hono/csrf), its session and CSRF token
];

/**
 * Refusals the broker writes an audit row for, by design (every other refusal here writes
 * nothing): `POST /v1/ext/calls` audits every decision after the signature, a rejected request
 * shape included (docs/decisions.md "Decision order", step 2: `call.rejected`, the key stays unused).
 */
const AUDITED_BY_DESIGN: Readonly<Record<string, Partial<Record<CheckId, string[]>>>> = {
  'POST /v1/ext/calls': { malformed_json: ['call.rejected'] },
};
type CheckId = 'malformed_json';

/**
 * Group-only routes on a path under `TOKEN_ROUTE_PREFIXES`: the agent asks on the resource
 * operators read and decide (`/v1/grant-requests`). A token reaches their guard, which refuses it
 * 403 `forbidden` as the authentication layer would.
 */
const GROUP_ROUTES_ON_TOKEN_PATHS: readonly string[] = ['POST /v1/grant-requests'];

/** Plausible, unknown values for path parameters: `<previous segment>/:<name>`, then `:<name>`. */
const PARAM_SAMPLES: Readonly<Record<string, string>> = {
  'tasks/:id': '01JAAAAAAAAAAAAAAAAAAAAAAA', // a ULID (a non-ULID is a 404 before any lookup)
  'dispatches/:id': '01JBBBBBBBBBBBBBBBBBBBBBBB',
  'grants/:id': 'grt_01JCCCCCCCCCCCCCCCCCCCCCCC',
  'grant-requests/:id': 'grq_01JDDDDDDDDDDDDDDDDDDDDDDD',
  'runs/:id': '01JEEEEEEEEEEEEEEEEEEEEEEE',
  'switches/:id': 'ksw_01JFFFFFFFFFFFFFFFFFFFFFFF',
  'deliveries/:id': 'whd_01JGGGGGGGGGGGGGGGGGGGGGGG',
  ':request_id': 'req-every-route-0001',
  ':group': 'developer',
};

// ---------------------------------------------------------------------------------------------
// One broker for the whole file, and the routes read from an app built over its dependencies.
// ---------------------------------------------------------------------------------------------

const broker = await startBroker();
afterAll(() => broker.stop());
const operator = await tokenFor(broker, 'operator', 'every-route-olga');
const auditor = await tokenFor(broker, 'auditor', 'every-route-ada');
const skewS = broker.deps.config.clockSkewS;
const limit = broker.deps.config.bodyLimitBytes;

interface Route {
  method: string;
  path: string;
  /** `METHOD /path`, the key of {@link ROUTES}. */
  key: string;
  access: Access | undefined;
  /** The path with its parameters replaced by {@link PARAM_SAMPLES}. */
  concrete: string;
  /** Parameters without a sample value. */
  missingSamples: string[];
}

/**
 * The distinct (method, path) pairs the app routes, and its `ALL` entries (middleware). Hono 4's
 * `app.routes` holds one `{basePath, path, method, handler}` per handler, so a guarded route (a
 * `requirePrincipal` guard and its handler) appears twice: deduplicated here.
 */
function enumerate(): { routes: Route[]; allEntries: string[] } {
  // Building an app runs callRoutes' crash recovery (a no-op: no call is running) and creates a
  // CallService that never serves; the server's own app is not exposed by startServer.
  const app = createApp(broker.deps);
  const keys = new Set<string>();
  const allEntries = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') allEntries.add(`ALL ${r.path}`);
    else keys.add(`${r.method} ${r.path}`);
  }
  const routes = [...keys].map((key): Route => {
    const [method, path] = key.split(' ') as [string, string];
    const missingSamples: string[] = [];
    const segments = path.split('/');
    const concrete = segments
      .map((seg, i) => {
        if (!seg.startsWith(':')) return seg;
        const sample = PARAM_SAMPLES[`${segments[i - 1]}/${seg}`] ?? PARAM_SAMPLES[seg];
        if (sample === undefined) missingSamples.push(seg);
        return sample ?? 'no-sample';
      })
      .join('/');
    return { method, path, key, access: ROUTES[key], concrete, missingSamples };
  });
  return { routes, allEntries: [...allEntries] };
}

const { routes: APP_ROUTES, allEntries: APP_ALL_ENTRIES } = enumerate();
const PUBLIC_ROUTES = APP_ROUTES.filter((r) => r.access === 'public');
const CONSOLE_ROUTES = APP_ROUTES.filter((r) => r.access === 'console');
const GUARDED_ROUTES = APP_ROUTES.filter((r) => r.access !== 'public' && r.access !== 'console');

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

interface Answer {
  /** The request's method. */
  method: string;
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function send(method: string, path: string, init: { headers?: Record<string, string>; body?: string | Uint8Array | ReadableStream<Uint8Array> } = {}): Promise<Answer> {
  const res = await fetch(new URL(path, broker.url), {
    method,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = text;
  }
  return { method, status: res.status, headers: res.headers, text, body };
}

const isBodyMethod = (method: string) => BODY_METHODS.has(method.toUpperCase());
const nowS = () => Math.floor(broker.clock.now() / 1000);
const credentialOf = (group: string): GroupCredential => {
  const key = broker.deps.keys.current(group);
  return { keyid: key.keyid, secret: key.secret };
};

interface SignOptions {
  /** The body signed (default `{}` for body methods). */
  body?: string;
  /** The Idempotency-Key signed; null: none (default: a fresh UUID for body methods). */
  idempotencyKey?: string | null;
  /** The path (and query) signed instead of the one sent. */
  signPath?: string;
  createdS?: number;
  credential?: GroupCredential;
}

/** The headers of a request signed with the project's client (`signRequest`), as `main` unless told. */
function signed(method: string, path: string, o: SignOptions = {}): Record<string, string> {
  const body = o.body ?? (isBodyMethod(method) ? '{}' : undefined);
  const idem = o.idempotencyKey === undefined ? (isBodyMethod(method) ? randomUUID() : undefined) : (o.idempotencyKey ?? undefined);
  return signRequest(
    {
      method,
      url: new URL(o.signPath ?? path, broker.url).href,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      ...(body !== undefined ? { body } : {}),
      ...(idem !== undefined ? { idempotencyKey: idem } : {}),
    },
    o.credential ?? credentialOf('main'),
    o.createdS ?? nowS(),
  );
}

/** A principal a route may serve (or refuse): a signing group, or a bearer token of a role. */
type Principal = { kind: 'group'; group: string } | { kind: 'token'; role: 'operator' | 'auditor' };
const tokenOf = (role: 'operator' | 'auditor') => (role === 'operator' ? operator : auditor);
const nameOf = (p: Principal) => (p.kind === 'group' ? `the ${p.group} group` : `an ${p.role} token`);

/** The headers a principal sends: a signature over (path, body, key), or a bearer token with the key. */
function credentialsFor(p: Principal, method: string, path: string, body: string | undefined, idempotencyKey: string | null = randomUUID()): Record<string, string> {
  if (p.kind === 'group') {
    return signed(method, path, { credential: credentialOf(p.group), ...(body !== undefined ? { body } : {}), idempotencyKey: isBodyMethod(method) ? idempotencyKey : null });
  }
  return {
    authorization: `Bearer ${tokenOf(p.role)}`,
    ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(isBodyMethod(method) && idempotencyKey !== null ? { 'idempotency-key': idempotencyKey } : {}),
  };
}

/** Who a route serves, and who it must refuse with 403 `forbidden`. */
function principals(access: Access): { allowed: Principal[]; refused: Principal[] } {
  const main: Principal = { kind: 'group', group: 'main' };
  const developer: Principal = { kind: 'group', group: 'developer' };
  const op: Principal = { kind: 'token', role: 'operator' };
  const au: Principal = { kind: 'token', role: 'auditor' };
  switch (access) {
    case 'public':
    case 'console':
      return { allowed: [], refused: [] };
    case 'group':
      return { allowed: [main, developer], refused: [op, au] };
    case 'main+operator':
      return { allowed: [main, op], refused: [developer, au] };
    case 'token:operator':
      return { allowed: [op], refused: [au, main, developer] };
    case 'token:operator,auditor':
      return { allowed: [op, au], refused: [main, developer] };
    case 'group+token:operator,auditor':
      return { allowed: [main, developer, op, au], refused: [] };
  }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

const SIGNATURE_401: readonly ErrorCode[] = ['signature_missing', 'signature_invalid', 'signature_expired', 'digest_mismatch', 'unknown_key'];
const STACK_OR_FILE = [/\n\s*at\s/, /\bat \S+ \(/, /\.(?:ts|js|mjs|cjs):\d+/, /node:internal/, /node_modules/, /file:\/\//];

/**
 * Asserts an RFC 9457 answer: the status, `application/problem+json`, `{type, title, status,
 * code, detail, instance}` consistent with each other and with `ERROR_STATUS`, `code` one of
 * `codes`, no stack trace or file path, and an `X-Request-Id` header.
 */
function expectProblem(res: Answer, status: number, codes: readonly ErrorCode[], path: string): void {
  const where = `${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, where).toBe(status);
  expect(res.headers.get('content-type'), where).toMatch(/^application\/problem\+json\b/);
  expect(res.headers.get('x-request-id'), 'X-Request-Id').toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  expect(typeof res.body, where).toBe('object');
  const body = res.body as Record<string, unknown>;
  expect(codes, where).toContain(body['code']);
  const code = body['code'] as ErrorCode;
  expect(ERROR_STATUS[code], `ERROR_STATUS of ${code}`).toBe(status);
  expect(body).toMatchObject({ type: `urn:nanoclaw-broker:problem:${code}`, status, code, instance: new URL(path, broker.url).pathname });
  expect(body['title']).toEqual(expect.any(String));
  expect((body['title'] as string).length).toBeGreaterThan(0);
  expect(body['detail']).toEqual(expect.any(String));
  expect((body['detail'] as string).length).toBeGreaterThan(0);
  for (const re of STACK_OR_FILE) expect(res.text, `stack trace or file path in ${where}`).not.toMatch(re);
  if (SIGNATURE_401.includes(code)) {
    // RFC 9110 §11.6.1: a challenge on every 401; RFC 9421 §5.1: what to sign.
    expect(res.headers.get('www-authenticate'), 'WWW-Authenticate').toMatch(/^Signature realm="nanoclaw-broker"/);
    const wanted = isBodyMethod(res.method) ? '"@method" "@path" "@query" "content-digest" "idempotency-key"' : '"@method" "@path" "@query"';
    expect(res.headers.get('accept-signature'), 'Accept-Signature').toBe(`broker=(${wanted});created;alg="hmac-sha256";tag="nanoclaw-broker"`);
  }
  expect(res.text).not.toContain(REPO_ROOT);
}

/** A HEAD answer carries no body: the status, the problem content type and the request id. */
function expectHeadProblem(res: Answer, status: number): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  expect(res.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  expect(res.text).toBe('');
}

/** 401 `unauthorized` with an RFC 6750 Bearer challenge. */
function expectBearer401(res: Answer, path: string): void {
  expectProblem(res, 401, ['unauthorized'], path);
  expect(res.headers.get('www-authenticate'), 'WWW-Authenticate').toMatch(/^Bearer realm="nanoclaw-broker"/);
}

const sqlite = broker.deps.db.sqlite;
const auditRows = () => (sqlite.prepare('SELECT count(*) AS n FROM gov_activities').get() as { n: number }).n;
const totalChanges = () => (sqlite.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
const auditKindsAfter = (n: number) => (sqlite.prepare('SELECT kind FROM gov_activities ORDER BY seq LIMIT -1 OFFSET ?').all(n) as { kind: string }[]).map((r) => r.kind);

/**
 * Runs a request that must be refused and asserts it wrote nothing: no audit row and no row at all
 * (`total_changes()` of the broker's connection, which serves every request of this process), or
 * exactly the audit rows `audited` lists when the broker audits that refusal by design.
 */
async function refusedWithoutWrites(run: () => Promise<void>, audited: readonly string[] = []): Promise<void> {
  const rows = auditRows();
  const changes = totalChanges();
  await run();
  expect(auditKindsAfter(rows), 'audit rows written by a refused request').toEqual(audited);
  if (audited.length === 0) expect(totalChanges() - changes, 'rows written by a refused request').toBe(0);
}

// ---------------------------------------------------------------------------------------------
// The checks, per route
// ---------------------------------------------------------------------------------------------

interface Case {
  name: string;
  run: () => Promise<void>;
  /** A known deviation: the case is expected to fail (`it.fails`); the string says why (BUG). */
  bug?: string;
}

/**
 * Known deviations, by route key and case name: each case runs as `it.fails` (it must keep
 * failing; once fixed, `it.fails` fails and the entry must go).
 */
const KNOWN_BUGS: Readonly<Record<string, Readonly<Record<string, string>>>> = {};

/** The KNOWN_BUGS entries that matched a case (filled while the cases are collected). */
const usedBugs = new Set<string>();

function casesFor(route: Route): Case[] {
  const { method, concrete: path, access } = route;
  const body = isBodyMethod(method);
  const reqBody = body ? '{}' : undefined;
  const bodyInit = reqBody !== undefined ? { body: reqBody } : {};
  const jsonHeaders: Record<string, string> = body ? { 'content-type': 'application/json', 'idempotency-key': randomUUID() } : {};
  const cases: Case[] = [];
  const add = (name: string, run: () => Promise<void>) => cases.push({ name, run });

  // --- credentials: missing, tampered, stale, unknown, garbage (any route, classified or not) ---
  add('no credentials → 401 signature_missing with its challenges (Signature, and Bearer where a token may go)', () =>
    refusedWithoutWrites(async () => {
      const res = await send(method, path, { headers: jsonHeaders, ...bodyInit });
      expectProblem(res, 401, ['signature_missing'], path);
      const tokenPath = TOKEN_ROUTE_PREFIXES.some((p) => route.concrete === p || route.concrete.startsWith(`${p}/`));
      expect(res.headers.get('www-authenticate')).toBe(`Signature realm="nanoclaw-broker"${tokenPath ? ', Bearer realm="nanoclaw-broker"' : ''}`);
    }),
  );
  if (method === 'GET') {
    add('HEAD without credentials → 401', () => refusedWithoutWrites(async () => expectHeadProblem(await send('HEAD', path), 401)));
  }
  add('a valid signature over another path → 401 signature_invalid', () =>
    refusedWithoutWrites(async () => {
      const other = `${route.concrete.replace(/\/[^/]*$/, '')}/not-this-one`;
      expectProblem(await send(method, path, { headers: signed(method, path, { signPath: other }), ...bodyInit }), 401, ['signature_invalid'], path);
    }),
  );
  add('a valid signature over another query → 401 signature_invalid', () =>
    refusedWithoutWrites(async () => {
      expectProblem(await send(method, `${path}?limit=1`, { headers: signed(method, path), ...bodyInit }), 401, ['signature_invalid'], path);
    }),
  );
  if (body) {
    add('a valid signature over another body → 401 digest_mismatch', () =>
      refusedWithoutWrites(async () => {
        const headers = signed(method, path, { body: '{"reason":"signed"}' });
        expectProblem(await send(method, path, { headers, body: '{"reason":"sent"}' }), 401, ['digest_mismatch', 'signature_invalid'], path);
      }),
    );
    add('the Idempotency-Key changed after signing → 401 signature_invalid', () =>
      refusedWithoutWrites(async () => {
        const headers = { ...signed(method, path, { idempotencyKey: 'signed-key-0001' }), 'idempotency-key': 'other-key-0002' };
        expectProblem(await send(method, path, { headers, body: '{}' }), 401, ['signature_invalid'], path);
      }),
    );
  }
  add(`created more than BROKER_CLOCK_SKEW_S in the past → 401 signature_expired`, () =>
    refusedWithoutWrites(async () => {
      expectProblem(await send(method, path, { headers: signed(method, path, { createdS: nowS() - skewS - 60 }), ...bodyInit }), 401, ['signature_expired'], path);
    }),
  );
  add(`created more than BROKER_CLOCK_SKEW_S in the future → 401 signature_expired`, () =>
    refusedWithoutWrites(async () => {
      expectProblem(await send(method, path, { headers: signed(method, path, { createdS: nowS() + skewS + 60 }), ...bodyInit }), 401, ['signature_expired'], path);
    }),
  );
  add('an unknown key id → 401 unknown_key', () =>
    refusedWithoutWrites(async () => {
      const credential = { keyid: 'ghost:1', secret: credentialOf('main').secret };
      expectProblem(await send(method, path, { headers: signed(method, path, { credential }), ...bodyInit }), 401, ['unknown_key'], path);
    }),
  );
  add("an unknown version of a real group's key → 401 unknown_key", () =>
    refusedWithoutWrites(async () => {
      const credential = { keyid: 'main:99', secret: credentialOf('main').secret };
      expectProblem(await send(method, path, { headers: signed(method, path, { credential }), ...bodyInit }), 401, ['unknown_key'], path);
    }),
  );
  add('Authorization: Bearer garbage → 401 unauthorized with a Bearer challenge', () =>
    refusedWithoutWrites(async () => expectBearer401(await send(method, path, { headers: { authorization: 'Bearer garbage', ...jsonHeaders }, ...bodyInit }), path)),
  );
  add('Authorization: Basic … → 401 unauthorized with a Bearer challenge', () =>
    refusedWithoutWrites(async () => expectBearer401(await send(method, path, { headers: { authorization: 'Basic b3BlcmF0b3I6aHVudGVyMg==', ...jsonHeaders }, ...bodyInit }), path)),
  );
  add('Bearer garbage beside a valid main signature → 401 unauthorized (the signature does not rescue it)', () =>
    refusedWithoutWrites(async () => expectBearer401(await send(method, path, { headers: { ...signed(method, path), authorization: 'Bearer garbage' }, ...bodyInit }), path)),
  );
  add('a JWT-shaped bearer token not signed by the broker → 401 unauthorized', () =>
    refusedWithoutWrites(async () => {
      const forged = [{ alg: 'none', typ: 'JWT' }, { role: 'operator', sub: 'mallory', iss: 'nanoclaw-broker', aud: 'nanoclaw-broker', exp: nowS() + 600 }]
        .map((p) => Buffer.from(JSON.stringify(p)).toString('base64url'))
        .join('.');
      expectBearer401(await send(method, path, { headers: { authorization: `Bearer ${forged}.`, ...jsonHeaders }, ...bodyInit }), path);
    }),
  );

  if (access === undefined || access === 'public') return cases;
  const { allowed, refused } = principals(access);

  // --- the wrong kind of principal: 403 forbidden before the handler ---
  for (const p of refused) {
    add(`${nameOf(p)} → 403 forbidden`, () =>
      refusedWithoutWrites(async () => expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, reqBody), ...bodyInit }), 403, ['forbidden'], path)),
    );
  }

  // --- body methods, as one group and one token the route serves ---
  if (body) {
    const asGroup = allowed.find((p) => p.kind === 'group');
    const asToken = allowed.find((p) => p.kind === 'token');
    for (const p of [asGroup, asToken].filter((x): x is Principal => x !== undefined)) {
      const who = nameOf(p);
      add(`${who} without Idempotency-Key → 400 idempotency_key_missing`, () =>
        refusedWithoutWrites(async () => expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, '{}', null), body: '{}' }), 400, ['idempotency_key_missing'], path)),
      );
      add(`${who} with a malformed Idempotency-Key (256 characters) → 400 idempotency_key_missing`, () =>
        refusedWithoutWrites(async () => expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, '{}', 'k'.repeat(256)), body: '{}' }), 400, ['idempotency_key_missing'], path)),
      );
      add(`${who}, a body over BROKER_BODY_LIMIT_BYTES (Content-Length) → 413 payload_too_large`, () =>
        refusedWithoutWrites(async () => {
          const big = JSON.stringify({ reason: 'x'.repeat(limit) });
          expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, big), body: big }), 413, ['payload_too_large'], path);
        }),
      );
      add(`${who}, a chunked body over BROKER_BODY_LIMIT_BYTES → 413 payload_too_large`, () =>
        refusedWithoutWrites(async () => {
          const big = Buffer.from(JSON.stringify({ reason: 'x'.repeat(limit + 16 * 1024) }));
          const chunk = 8 * 1024;
          const stream = new ReadableStream<Uint8Array>({
            start(ctl) {
              for (let i = 0; i < big.length; i += chunk) ctl.enqueue(big.subarray(i, i + chunk));
              ctl.close();
            },
          });
          const headers = credentialsFor(p, method, path, big.toString('utf8'));
          expectProblem(await send(method, path, { headers, body: stream }), 413, ['payload_too_large'], path);
        }),
      );
      add(`${who}, malformed JSON under a valid ${p.kind === 'group' ? 'signature' : 'token'} → 400 malformed_json`, () =>
        refusedWithoutWrites(async () => {
          const bad = '{"reason": "unterminated';
          expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, bad), body: bad }), 400, ['malformed_json'], path);
        }, AUDITED_BY_DESIGN[route.key]?.malformed_json ?? []),
      );
      add(`${who}, a lone UTF-16 surrogate in a JSON string (not I-JSON, RFC 7493) → 400 malformed_json`, () =>
        refusedWithoutWrites(async () => {
          const bad = '{"reason": "half a pair \\ud800 here", "action": "x\\udc00"}';
          expectProblem(await send(method, path, { headers: credentialsFor(p, method, path, bad), body: bad }), 400, ['malformed_json'], path);
        }, AUDITED_BY_DESIGN[route.key]?.malformed_json ?? []),
      );
    }
  }

  // --- the control: each principal the route serves gets past authentication ---
  for (const p of allowed) {
    add(`control: ${nameOf(p)} gets past authentication`, async () => {
      const res = await send(method, path, { headers: credentialsFor(p, method, path, reqBody), ...bodyInit });
      const code = (res.body as { code?: string } | null)?.code;
      expect([...SIGNATURE_401, 'unauthorized', 'forbidden', 'idempotency_key_missing', 'method_not_allowed', 'internal_error'], `${res.status} ${res.text.slice(0, 300)}`).not.toContain(code);
      if (res.status === 404) expect(res.body.detail, 'the sample path must reach the route').not.toMatch(/^No route /);
      expect(res.status, `${res.status} ${res.text.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400) expectProblem(res, res.status, [code as ErrorCode], path);
    });
  }

  const known = KNOWN_BUGS[route.key] ?? {};
  for (const c of cases) {
    if (known[c.name] === undefined) continue;
    c.bug = known[c.name]!;
    usedBugs.add(`${route.key} :: ${c.name}`);
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

describe('the route table', () => {
  it('classifies every route the app serves', () => {
    const unclassified = APP_ROUTES.filter((r) => r.access === undefined).map((r) => r.key);
    expect(unclassified, `routes the app serves that ROUTES (test/security/every-route.test.ts) does not classify: ${unclassified.join(', ')}`).toEqual([]);
  });

  it('lists no route the app no longer serves', () => {
    const served = new Set(APP_ROUTES.map((r) => r.key));
    const stale = Object.keys(ROUTES).filter((k) => !served.has(k));
    expect(stale, `routes in ROUTES that the app no longer serves: ${stale.join(', ')}`).toEqual([]);
  });

  it("knows every ALL entry (middleware) of the app", () => {
    expect([...APP_ALL_ENTRIES].sort(), `ALL entries (app.use/app.all) not in MIDDLEWARE: ${APP_ALL_ENTRIES.filter((e) => !MIDDLEWARE.includes(e)).join(', ')}`).toEqual([...MIDDLEWARE].sort());
  });

  it('has a sample value for every path parameter', () => {
    const missing = APP_ROUTES.filter((r) => r.missingSamples.length > 0).map((r) => `${r.key} (${r.missingSamples.join(', ')})`);
    expect(missing, `add PARAM_SAMPLES for: ${missing.join('; ')}`).toEqual([]);
  });

  it('agrees with TOKEN_ROUTE_PREFIXES: token routes inside them, group and public routes outside (but the listed group routes of a token resource)', () => {
    const underPrefix = (p: string) => TOKEN_ROUTE_PREFIXES.some((x) => p === x || p.startsWith(`${x}/`));
    const servesTokens = (a: Access) => a.startsWith('token:') || a.includes('+token:') || a === 'main+operator';
    const wrong = APP_ROUTES.filter((r) => r.access !== undefined && underPrefix(r.path) !== (servesTokens(r.access) || GROUP_ROUTES_ON_TOKEN_PATHS.includes(r.key))).map((r) => `${r.key} (${r.access})`);
    expect(wrong, `routes whose access disagrees with TOKEN_ROUTE_PREFIXES: ${wrong.join(', ')}`).toEqual([]);
  });

  it('matches every KNOWN_BUGS entry to a case (a renamed case cannot hide a known bug)', () => {
    const listed = Object.entries(KNOWN_BUGS).flatMap(([key, cases]) => Object.keys(cases).map((name) => `${key} :: ${name}`));
    expect(listed.filter((b) => !usedBugs.has(b)), 'KNOWN_BUGS entries that match no case').toEqual([]);
  });

  it('puts every non-public route under /v1/ (behind authenticate())', () => {
    expect(APP_ROUTES.length).toBeGreaterThan(0);
    expect(GUARDED_ROUTES.filter((r) => !r.path.startsWith('/v1/')).map((r) => r.key)).toEqual([]);
  });
});

describe.each(PUBLIC_ROUTES.map((r) => ({ ...r, label: r.key })))('public: $label', (route) => {
  it('answers without credentials', async () => {
    const res = await send(route.method, route.concrete);
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  });

  it('never echoes a credential sent to it (body, headers, /metrics, logs)', async () => {
    const main = credentialOf('main');
    const secret64 = Buffer.from(main.secret).toString('base64url');
    const headers: Record<string, string> = { ...signed('GET', route.concrete), authorization: `Bearer ${operator}`, cookie: `session=${auditor}`, 'x-request-id': secret64 };
    const sent = [operator, auditor, secret64, Buffer.from(main.secret).toString('base64'), Buffer.from(main.secret).toString('hex'), headers['signature']!.slice('broker=:'.length, -1)];
    const res = await send(route.method, `${route.concrete}?access_token=${operator}`, { headers });
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    const echoed = [res.text, ...[...res.headers].map(([k, v]) => `${k}: ${v}`)].join('\n');
    const metrics = (await send('GET', '/metrics')).text;
    const logs = broker.logs.join('');
    for (const s of sent) {
      expect(echoed.includes(s), 'a credential echoed in the answer').toBe(false);
      expect(metrics.includes(s), 'a credential in /metrics').toBe(false);
      expect(logs.includes(s), 'a credential in the logs').toBe(false);
    }
  });
});

describe.each(GUARDED_ROUTES.map((r) => ({ ...r, label: `${r.key} [${r.access ?? 'UNCLASSIFIED'}]` })))('$label', (route) => {
  for (const c of casesFor(route)) {
    if (c.bug !== undefined) it.fails(`${c.name} (known bug: ${c.bug})`, c.run);
    else it(c.name, c.run);
  }
});

/**
 * The console's routes: each answers with its strict CSP; without a session cookie a page sends
 * the browser to sign-in (303) and a form post is refused (the Origin check, 403, or no session,
 * 401), writing nothing; a bearer header or a group signature is not a session.
 */
describe.each(CONSOLE_ROUTES.map((r) => ({ ...r, label: r.key })))('console: $label', (route) => {
  const open = CONSOLE_OPEN.includes(route.key);
  const isGet = route.method === 'GET';

  it('sets a strict Content-Security-Policy and no-store', async () => {
    const res = await send(route.method, route.concrete, isGet ? {} : { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'self';.*form-action 'self'; frame-ancestors 'none'/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    // The stylesheet may be cached (revalidated); pages never are.
    expect(res.headers.get('cache-control')).toBe(route.key === 'GET /console/style.css' ? 'no-cache' : 'no-store');
  });

  if (open) {
    if (isGet) it('answers without a session', async () => expect((await send('GET', route.concrete)).status).toBe(200));
    else
      it('refuses a sign-in posted without the form token, setting no cookie', () =>
        refusedWithoutWrites(async () => {
          const res = await send('POST', route.concrete, { headers: { 'content-type': 'application/x-www-form-urlencoded', origin: broker.url }, body: `token=${operator}` });
          expect(res.status).toBe(403);
          expect(res.headers.get('set-cookie') ?? '').not.toContain('console_session');
        }));
    return;
  }

  for (const [name, headers] of [
    ['no session', {}],
    ['an operator bearer header (not a session)', { authorization: `Bearer ${operator}` }],
    ['a signature of main (not a session)', signed(route.method, route.concrete)],
    ['a garbage session cookie', { cookie: 'console_session=garbage' }],
  ] as const) {
    it(`${name} → ${isGet ? '303 to /console/login' : 'refused'}, writing nothing`, () =>
      refusedWithoutWrites(async () => {
        if (isGet) {
          const res = await fetch(new URL(route.concrete, broker.url), { headers, redirect: 'manual' });
          expect(res.status).toBe(303);
          expect(res.headers.get('location')).toBe('/console/login');
          return;
        }
        const form = await send('POST', route.concrete, { headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', origin: broker.url }, body: 'reason=x' });
        expect(form.status).toBe(401);
        const foreign = await send('POST', route.concrete, { headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, body: 'reason=x' });
        expect(foreign.status).toBe(403);
      }));
  }
});
