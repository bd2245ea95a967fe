/**
 * The access requests' store on both engines, through the real requests and grants services and
 * their plans: create with an Idempotency-Key (replay, reuse with another body, another group's
 * key), the limit of pending requests per group (also when three replicas ask at once), approve
 * (the grant made by the grants store, the request linked), deny, list pages by effective status,
 * the expiry sweep (once, also when run on three replicas at once), an audited refusal, an audit
 * failure that rolls the change back, and three replicas deciding one request with exactly one
 * decision, and an audit chain that verifies after.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approveGrantRequest,
  createGrantRequest,
  denyGrantRequest,
  expireGrantRequests,
  getGrantRequest,
  listGrantRequests,
  MAX_PENDING_REQUESTS_PER_GROUP,
  type GrantRequestDeps,
} from '../../../src/modules/grant-requests/service.js';
import { sqliteGrantRequestStore, type GrantRequestStore } from '../../../src/modules/grant-requests/store.js';
import { pgGrantRequestStore } from '../../../src/modules/grant-requests/store.pg.js';
import { CreateGrantRequestBody, type CreateGrantRequestInput } from '../../../src/modules/grant-requests/terms.js';
import { sqliteGrantStore, type GrantStore } from '../../../src/modules/grants/store.js';
import { pgGrantStore } from '../../../src/modules/grants/store.pg.js';
import { Catalog } from '../../../src/modules/calls/catalog.js';
import type { Groups } from '../../../src/modules/identity/groups.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import type { IdempotencyRef } from '../../../src/platform/idempotency.js';
import { opsProvider } from '../../grants/helpers.js';
import { tempDir } from '../../helpers/harness.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const TTL_S = 3600;
const GROUPS: Groups = new Map([
  ['main', { name: 'main', ceiling: 3, description: '' }],
  ['developer', { name: 'developer', ceiling: 2, description: '' }],
  ['security', { name: 'security', ceiling: 1, description: '' }],
]);
const ask = (terms: Record<string, unknown> = {}): CreateGrantRequestInput =>
  CreateGrantRequestBody.parse({ provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/*'], ttl_s: 7200, justification: 'deploy the fix for #42', ...terms });
const idem = (key: string, body: unknown): IdempotencyRef => ({ key, requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex') });
const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { code?: string }).code ?? String(r.reason) : 'ok');

type Stores = { grants: GrantStore; grantRequests: GrantRequestStore };

/** The requests store's behaviours, on `engine`, with stores made by `makeStores` (one set per replica). */
function grantRequestStoreBehaviours(engine: Engine, makeStores: (h: Handle, clock: Clock) => Stores): void {
  describe(`GrantRequestStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let replicas: GrantRequestDeps[];

    beforeAll(async () => {
      tdb = await engine.open('grantrequests');
      const config = { pendingGrantTtlS: 3 * 24 * 3600, clockSkewS: 60, policiesDir: tempDir(), grantRequestTtlS: TTL_S };
      const catalog = new Catalog([opsProvider()]);
      replicas = tdb.replicas.map((h) => ({ clock, groups: GROUPS, catalog, config, stores: makeStores(h, clock) }));
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const kinds = async (subject: string) => (await tdb.rows<{ kind: string }>(`SELECT kind FROM gov_activities WHERE subject = '${subject}' ORDER BY seq`)).map((r) => r.kind);
    const pendingOf = async (group: string) => (await tdb.rows<{ n: number | string }>(`SELECT count(*) AS n FROM grant_requests WHERE "group" = '${group}' AND status = 'pending'`)).map((r) => Number(r.n))[0];

    it('creates a request with its audit row; the same key and body replays it on another replica, another body is 422, another group’s key is its own', async () => {
      const body = ask({ justification: 'retry me' });
      const first = await createGrantRequest(replicas[0]!, body, 'developer', idem('k1', body));
      expect(first.replayed).toBe(false);
      expect(first.request).toMatchObject({ group: 'developer', provider: 'ops', level: 2, allowed_actions: ['ops.write'], resources: ['acme/*'], ttl_s: 7200, status: 'pending', grant_id: null });
      expect(first.request.pending_expires_at).toBe(new Date(T0 + TTL_S * 1000).toISOString());
      const again = await createGrantRequest(replicas[1]!, body, 'developer', idem('k1', body));
      expect(again).toEqual({ request: first.request, replayed: true });
      const other = ask({ justification: 'something else' });
      await expect(createGrantRequest(replicas[2]!, other, 'developer', idem('k1', other))).rejects.toMatchObject({ code: 'idempotency_key_reused', status: 422 });
      const security = ask({ level: 1, allowed_actions: ['ops.read'] });
      const theirs = await createGrantRequest(replicas[2]!, security, 'security', idem('k1', security));
      expect(theirs.request.id).not.toBe(first.request.id);
      expect(await kinds(first.request.id)).toEqual(['grant_request.created']);
      expect(await tdb.count('grant_requests')).toBe(2);
    });

    it('refuses terms above the ceiling with 422 and stores nothing', async () => {
      const before = await tdb.count('grant_requests');
      await expect(createGrantRequest(replicas[0]!, ask({ level: 2 }), 'security')).rejects.toMatchObject({ status: 422 });
      expect(await tdb.count('grant_requests')).toBe(before);
    });

    it('approves on one replica: the grant is made, the request linked and audited; a denial on another replica after it is 409', async () => {
      const { request } = await createGrantRequest(replicas[0]!, ask(), 'developer');
      const approved = await approveGrantRequest(replicas[1]!, request.id, 'operator:olga', 'fine for #42');
      expect(approved.replayed).toBe(false);
      expect(approved.request).toMatchObject({ id: request.id, status: 'approved', decided_by: 'operator:olga', decision_reason: 'fine for #42', grant_id: approved.grant.id });
      expect(approved.grant).toMatchObject({ group: 'developer', provider: 'ops', level: 2, status: 'active', requested_by: 'operator:olga' });
      expect(await replicas[2]!.stores.grants.get(approved.grant.id)).toMatchObject({ row: { id: approved.grant.id, status: 'active' } });
      await expect(denyGrantRequest(replicas[2]!, request.id, 'operator:otto', 'no')).rejects.toMatchObject({ code: 'grant_request_not_pending', status: 409 });
      const again = await approveGrantRequest(replicas[2]!, request.id, 'operator:otto', null);
      expect(again).toMatchObject({ replayed: true, grant: { id: approved.grant.id } });
      expect(await kinds(request.id)).toEqual(['grant_request.created', 'grant_request.approved', 'grant_request.granted']);
      const detail = await getGrantRequest(replicas[0]!, request.id);
      expect(detail.timeline.map((e) => e.kind)).toEqual(['grant_request.created', 'grant_request.approved', 'grant_request.granted']);
      expect(detail.grant_status).toBe('active');
    });

    it('the requesting group deciding its own request is refused 403 and the refusal audited; an unknown request leaves no row', async () => {
      const { request } = await createGrantRequest(replicas[0]!, ask({ level: 3, allowed_actions: ['ops.deploy'] }), 'main');
      await expect(approveGrantRequest(replicas[1]!, request.id, 'main', null)).rejects.toMatchObject({ code: 'separation_of_powers', status: 403 });
      expect(await kinds(request.id)).toEqual(['grant_request.created', 'grant_request.decision_refused']);
      expect(await replicas[2]!.stores.grantRequests.recordRefusal('grq_nope', { actor: 'main', kind: 'grant_request.decision_refused', subject: 'grq_nope', detail: {} })).toBe(false);
      expect(await kinds('grq_nope')).toEqual([]);
    });

    it('three replicas deciding one request at once: one decision, the others answered from it', async () => {
      const { request } = await createGrantRequest(replicas[0]!, ask({ justification: 'race' }), 'developer');
      const decisions = await Promise.allSettled([
        denyGrantRequest(replicas[0]!, request.id, 'operator:a', 'no'),
        denyGrantRequest(replicas[1]!, request.id, 'operator:b', 'no'),
        denyGrantRequest(replicas[2]!, request.id, 'operator:c', 'no'),
      ]);
      expect(decisions.map(codeOf)).toEqual(['ok', 'ok', 'ok']);
      const deciders = new Set(decisions.map((d) => (d as PromiseFulfilledResult<{ decided_by: string | null }>).value.decided_by));
      expect(deciders.size).toBe(1);
      expect(await kinds(request.id)).toEqual(['grant_request.created', 'grant_request.denied']);
    });

    it('lists by effective status in pages, and the sweep stores expired once, also run on three replicas at once', async () => {
      const due = await Promise.all([0, 1, 2].map(async (i) => (await createGrantRequest(replicas[i]!, ask({ justification: `forgotten ${i}` }), 'developer')).request.id));
      clock.advance(TTL_S * 1000 - 1);
      const pending = await listGrantRequests(replicas[1]!, { status: 'pending', group: 'developer', limit: 500 });
      expect(pending.items.map((r) => r.id)).toEqual(expect.arrayContaining(due));
      clock.advance(1);
      const expired = await listGrantRequests(replicas[1]!, { status: 'expired', limit: 500 });
      expect(expired.items.map((r) => r.id)).toEqual(expect.arrayContaining(due));
      expect((await listGrantRequests(replicas[2]!, { status: 'pending', group: 'developer', limit: 500 })).items.map((r) => r.id)).not.toEqual(expect.arrayContaining([due[0]]));
      const page = await listGrantRequests(replicas[2]!, { status: 'expired', limit: 1 });
      expect(page.items).toHaveLength(1);
      expect(page.nextCursor).not.toBeNull();

      const swept = await Promise.all(replicas.map((r) => expireGrantRequests(r, 2)));
      expect(swept.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
      expect(await expireGrantRequests(replicas[0]!)).toBe(0);
      for (const id of due) expect(await kinds(id)).toEqual(['grant_request.created', 'grant_request.expired']);
      expect(await tdb.count("grant_requests WHERE status = 'pending' AND pending_expires_at <= " + clock.now())).toBe(0);
    });

    it(`at most ${MAX_PENDING_REQUESTS_PER_GROUP} pending requests per group, also when three replicas ask at once (429 backpressure)`, async () => {
      const before = (await listGrantRequests(replicas[0]!, { status: 'pending', group: 'security', limit: 500 })).items.length;
      const asks = Array.from({ length: MAX_PENDING_REQUESTS_PER_GROUP + 4 }, (_, i) => createGrantRequest(replicas[i % 3]!, ask({ level: 1, allowed_actions: ['ops.read'], justification: `n${i}` }), 'security'));
      const results = (await Promise.allSettled(asks)).map(codeOf);
      expect(results.filter((c) => c === 'ok')).toHaveLength(MAX_PENDING_REQUESTS_PER_GROUP - before);
      expect(results.filter((c) => c !== 'ok').every((c) => c === 'backpressure')).toBe(true);
      expect(await pendingOf('security')).toBe(MAX_PENDING_REQUESTS_PER_GROUP);
    });

    it('rolls a decision back when its audit row cannot be written (503 audit_unavailable)', async () => {
      const { request } = await createGrantRequest(replicas[0]!, ask({ justification: 'no audit' }), 'developer');
      const repair = await tdb.breakAudit();
      try {
        await expect(denyGrantRequest(replicas[1]!, request.id, 'operator:olga', 'no')).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
        await expect(createGrantRequest(replicas[1]!, ask({ justification: 'nor this' }), 'developer')).rejects.toMatchObject({ code: 'audit_unavailable' });
      } finally {
        await repair();
      }
      expect(await replicas[2]!.stores.grantRequests.get(request.id)).toMatchObject({ status: 'pending', decidedBy: null });
      expect(await tdb.count("grant_requests WHERE justification = 'nor this'")).toBe(0);
      expect(await tdb.verifyChain()).toMatchObject({ ok: true });
    });
  });
}

for (const engine of ENGINES) {
  grantRequestStoreBehaviours(engine, (h, clock) =>
    engine.name === 'sqlite'
      ? { grants: sqliteGrantStore(sqliteOf(h), clock), grantRequests: sqliteGrantRequestStore(sqliteOf(h), clock) }
      : { grants: pgGrantStore(pgOf(h), clock), grantRequests: pgGrantRequestStore(pgOf(h), clock) },
  );
}
