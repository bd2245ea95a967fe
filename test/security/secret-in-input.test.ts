/**
 * Input that carries a secret is refused with 422 `secret_in_input` before anything is stored or
 * run, on every free-text field of every mutating route (and on any member name): a GitHub token,
 * a bearer JWT, the master key and a group secret each, through a real server. The problem names
 * the field and the detector's kind, never the value; no row of any table the route writes
 * changes, and `GET` shows nothing new.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createAsMain, makeApprover, signDecision, startGrantsBroker, tokenFor } from '../grants/helpers.js';
import { REPO_ROOT, type TestBroker } from '../helpers/harness.js';
import { runCli } from '../helpers/process.js';

let broker: TestBroker;
let operator: string;
/** The grant amended (pending, L3), the grant revoked (active, L1), the task edited. */
let pending: { id: string; digest: string };
let active: { id: string };
let task: { id: string; etag: string };

/** Each kind of secret, with the kind the problem must name. */
const kinds: { name: string; kind: string; value: () => string }[] = [
  { name: 'GitHub token', kind: 'github_token', value: () => `ghp_${randomBytes(27).toString('base64').replace(/[+/=]/g, 'x').slice(0, 36)}` },
  { name: 'bearer JWT', kind: 'jwt', value: () => operator },
  { name: 'master key', kind: 'broker_secret', value: () => fs.readFileSync(path.join(broker.dataDir, 'master.key'), 'utf8').trim() },
  { name: 'group secret', kind: 'broker_secret', value: () => broker.deps.keys.current('developer').secret.toString('base64url') },
];

/** One mutating route: who sends it and the body with `secret` placed in `field`. */
interface Case {
  route: string;
  field: string[];
  send: (body: unknown) => Promise<{ status: number; body: any }>;
  body: (secret: string) => unknown;
}

const asOperator = (method: 'POST' | 'PATCH', p: string) => (json: unknown) => bearer(broker, operator, method, p, { json });
const asMain = (method: 'POST' | 'PATCH', p: () => string, ifMatch = true) => async (json: unknown) => {
  const res = await broker.client('main').request(method, p(), { json, ...(ifMatch ? { headers: { 'if-match': task.etag } } : {}) });
  return { status: res.status, body: res.body };
};

const cases: Case[] = [
  { route: 'POST /v1/grants', field: ['reason'], send: asOperator('POST', '/v1/grants'), body: (s) => ({ group: 'developer', provider: 'ops', level: 1, reason: `see ${s}` }) },
  { route: 'POST /v1/grants', field: ['resources', '1'], send: asOperator('POST', '/v1/grants'), body: (s) => ({ group: 'developer', provider: 'ops', level: 1, reason: 'r', resources: ['acme/api', s] }) },
  { route: 'PATCH /v1/grants/{id}', field: ['reason'], send: (j) => bearer(broker, operator, 'PATCH', `/v1/grants/${pending.id}`, { json: j }), body: (s) => ({ reason: `now ${s}` }) },
  { route: 'POST /v1/grants/{id}/revoke', field: ['reason'], send: (j) => bearer(broker, operator, 'POST', `/v1/grants/${active.id}/revoke`, { json: j }), body: (s) => ({ reason: `leaked ${s}` }) },
  { route: 'POST /v1/tokens/revocations', field: ['reason'], send: asOperator('POST', '/v1/tokens/revocations'), body: (s) => ({ subject: 'bob', reason: `leaked ${s}` }) },
  { route: 'POST /v1/tokens/revocations', field: ['jti'], send: asOperator('POST', '/v1/tokens/revocations'), body: (s) => ({ jti: s, reason: 'leaked' }) },
  { route: 'POST /v1/tasks', field: ['title'], send: asMain('POST', () => '/v1/tasks', false), body: (s) => ({ title: `use ${s}`, type: 'OPS' }) },
  { route: 'POST /v1/tasks', field: ['description'], send: asMain('POST', () => '/v1/tasks', false), body: (s) => ({ title: 't', type: 'OPS', description: `token is\n${s}\n` }) },
  { route: 'POST /v1/tasks', field: ['definition_of_done', '0'], send: asMain('POST', () => '/v1/tasks', false), body: (s) => ({ title: 't', type: 'OPS', definition_of_done: [`rotate ${s}`] }) },
  { route: 'PATCH /v1/tasks/{id}', field: ['title'], send: asMain('PATCH', () => `/v1/tasks/${task.id}`), body: (s) => ({ title: s }) },
  { route: 'PATCH /v1/tasks/{id}', field: ['description'], send: asMain('PATCH', () => `/v1/tasks/${task.id}`), body: (s) => ({ description: `(${s})` }) },
  { route: 'POST /v1/tasks/{id}/transition', field: ['reason'], send: asMain('POST', () => `/v1/tasks/${task.id}/transition`), body: (s) => ({ to: 'BLOCKED', reason: `needs ${s}` }) },
  { route: 'POST /v1/tasks/{id}/gate', field: ['reason'], send: asMain('POST', () => `/v1/tasks/${task.id}/gate`), body: (s) => ({ decision: 'approve', reason: s }) },
  { route: 'POST /v1/tasks/{id}/override', field: ['reason'], send: asMain('POST', () => `/v1/tasks/${task.id}/override`), body: (s) => ({ reason: s, risk_acceptance: 'ok' }) },
  { route: 'POST /v1/tasks/{id}/override', field: ['risk_acceptance'], send: asMain('POST', () => `/v1/tasks/${task.id}/override`), body: (s) => ({ reason: 'ok', risk_acceptance: s }) },
];

/** Every row of every table the routes above write, as JSON: equal before and after a refusal. */
function stored(): string {
  const tables = ['grants', 'grant_approvals', 'grant_changes', 'tasks', 'task_gate_decisions', 'task_dispatches', 'token_revocations', 'gov_activities'];
  return JSON.stringify(tables.map((t) => broker.deps.db.sqlite.prepare(`SELECT * FROM ${t}`).all()));
}

beforeAll(async () => {
  broker = await startGrantsBroker();
  operator = await tokenFor(broker, 'operator', 'alice');
  pending = await createAsMain(broker, { group: 'main', level: 3, ttl_s: 3600 });
  active = await createAsMain(broker, { level: 1 });
  const created = await broker.client('main').post('/v1/tasks', { title: 'A task', type: 'OPS' });
  expect(created.status).toBe(201);
  task = { id: created.body.id, etag: created.headers.get('etag')! };
});
afterAll(() => broker.stop());

describe('422 secret_in_input on every free-text field of every mutating route', () => {
  for (const c of cases) {
    for (const k of kinds) {
      it(`${c.route} ${c.field.join('.')}: ${k.name}`, async () => {
        const secret = k.value();
        const before = stored();
        const res = await c.send(c.body(secret));
        expect({ status: res.status, code: res.body?.code, secrets: res.body?.secrets }).toEqual({
          status: 422,
          code: 'secret_in_input',
          secrets: [{ path: c.field, in: 'value', kind: k.kind }],
        });
        expect(res.body.detail).toContain(`${c.field.join('.')}: ${k.kind}`);
        expect(JSON.stringify(res.body)).not.toContain(secret);
        expect(stored()).toBe(before);
      });
    }
  }

  it('names a member name that holds a secret by its object, never echoing it', async () => {
    const secret = kinds[0]!.value();
    const before = stored();
    const res = await bearer(broker, operator, 'POST', '/v1/grants', { json: { group: 'developer', provider: 'ops', level: 1, reason: 'r', extra: { [secret]: 1 } } });
    expect({ status: res.status, code: res.body.code, secrets: res.body.secrets }).toEqual({ status: 422, code: 'secret_in_input', secrets: [{ path: ['extra'], in: 'name', kind: 'github_token' }] });
    expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(stored()).toBe(before);
  });

  it('GET shows no grant or task made from refused input, and the audit trail no creation row', async () => {
    const grants = await bearer(broker, operator, 'GET', '/v1/grants');
    expect(grants.body.data.map((g: { id: string }) => g.id).sort()).toEqual([pending.id, active.id].sort());
    const tasks = await broker.client('main').get('/v1/tasks');
    // the one made in beforeAll, and those the "not refused as such" bodies created
    expect((tasks.body as { data: { title: string }[] }).data.every((t) => !t.title.includes('ghp_') && !t.title.includes(operator))).toBe(true);
    const audit = await bearer(broker, operator, 'GET', '/v1/audit?kind=grant.created&limit=1000');
    expect(audit.body.data.map((r: { subject: string }) => r.subject).sort()).toEqual([pending.id, active.id].sort());
  });

  it('the approval route takes a JWS (JWT-shaped by design) but refuses any other secret in it', async () => {
    const approver = await makeApprover(broker, 'sec-approver', 'security');
    const before = stored();
    const jws = await signDecision(broker, approver, { id: pending.id, digest: 'not-the-digest' });
    const shaped = await broker.client('main').post(`/v1/grants/${pending.id}/approvals`, { jws });
    expect((shaped.body as { code: string }).code).toBe('approval_invalid');
    for (const k of kinds.filter((k) => k.kind !== 'jwt')) {
      const secret = k.value();
      const res = await broker.client('main').post(`/v1/grants/${pending.id}/approvals`, { jws: secret });
      expect({ status: res.status, code: (res.body as any).code, secrets: (res.body as any).secrets }).toEqual({
        status: 422,
        code: 'secret_in_input',
        secrets: [{ path: ['jws'], in: 'value', kind: k.kind }],
      });
      expect(JSON.stringify(res.body)).not.toContain(secret);
    }
    // no approval is recorded and the grant is unchanged (a refused approval of a wrong digest is audited)
    expect(JSON.parse(stored()).slice(0, 2)).toEqual(JSON.parse(before).slice(0, 2));
  });

  it('`broker grants create` refuses the same way, naming the option and the kind', async () => {
    const master = kinds[2]!.value();
    const before = stored();
    const out = await runCli(['grants', 'create', '--group', 'developer', '--provider', 'ops', '--level', '1', '--reason', `key ${master}`], {
      BROKER_DATA_DIR: broker.dataDir,
      BROKER_POLICIES_DIR: path.join(REPO_ROOT, 'policies'),
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('secret_in_input');
    expect(out.stderr).toContain('reason: broker_secret');
    expect(out.stdout + out.stderr).not.toContain(master);
    expect(stored()).toBe(before);
  });

  it('every case is sent through a route that otherwise works: the same bodies without a secret are not refused as such', async () => {
    for (const c of cases) {
      const res = await c.send(c.body('plain words'));
      expect(res.body?.code, `${c.route} ${c.field.join('.')}`).not.toBe('secret_in_input');
    }
  });
});
