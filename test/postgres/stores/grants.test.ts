/**
 * The grant store on both engines, through the real grants service and its plans: create with an
 * Idempotency-Key (replay, reuse with another body), refusals that roll back with no audit row, an
 * audit failure that rolls the change back, and writers on three replicas racing on the same grant
 * (the same create, two approvals, the same approval, two revocations) with exactly one effect
 * each, and an audit chain that verifies after.
 */
import { createHash } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitApproval } from '../../../src/modules/grants/approvals.js';
import { addApprover } from '../../../src/modules/grants/approvers.js';
import { createGrant, getGrant, listGrants, revokeAllGrants, revokeGrant, type GrantDeps } from '../../../src/modules/grants/service.js';
import { sqliteGrantStore, type GrantStore } from '../../../src/modules/grants/store.js';
import { pgGrantStore } from '../../../src/modules/grants/store.pg.js';
import { CreateGrantBody } from '../../../src/modules/grants/terms.js';
import { Catalog } from '../../../src/modules/calls/catalog.js';
import type { Groups } from '../../../src/modules/identity/groups.js';
import { ManualClock, type Clock } from '../../../src/platform/clock.js';
import type { IdempotencyRef } from '../../../src/platform/idempotency.js';
import { opsProvider } from '../../grants/helpers.js';
import { tempDir } from '../../helpers/harness.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type Handle, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const GROUPS: Groups = new Map([
  ['main', { name: 'main', ceiling: 3, description: '' }],
  ['developer', { name: 'developer', ceiling: 2, description: '' }],
  ['security', { name: 'security', ceiling: 1, description: '' }],
]);

const idem = (key: string, body: unknown): IdempotencyRef => ({ key, requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex') });
const settle = <T>(ps: Promise<T>[]) => Promise.allSettled(ps);
const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { code?: string }).code ?? String(r.reason) : 'ok');

/** The grant store's behaviours, on `engine`, with stores made by `makeStore` (one per replica). */
function grantStoreBehaviours(engine: Engine, makeStore: (h: Handle, clock: Clock) => GrantStore): void {
  describe(`GrantStore on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let replicas: GrantDeps[];
    let dev: { id: string; key: CryptoKey };
    let sec: { id: string; key: CryptoKey };

    beforeAll(async () => {
      tdb = await engine.open('grants');
      const config = { pendingGrantTtlS: 3 * 24 * 3600, clockSkewS: 60, policiesDir: tempDir() };
      const catalog = new Catalog([opsProvider()]);
      replicas = tdb.replicas.map((h) => ({ clock, groups: GROUPS, catalog, config, stores: { grants: makeStore(h, clock) } }));
      const approver = async (id: string, group: string) => {
        const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        await addApprover(replicas[0]!, { id, group, publicJwk: await exportJWK(publicKey) }, 'operator:test');
        return { id, key: privateKey };
      };
      dev = await approver('dana', 'developer');
      sec = await approver('sam', 'security');
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const sign = (who: { id: string; key: CryptoKey }, grant: { id: string; digest: string }, decision: 'approve' | 'deny' = 'approve', iatOffsetS = 0) => {
      const iat = Math.floor(clock.now() / 1000) - iatOffsetS;
      return new SignJWT({ grant_id: grant.id, grant_digest: grant.digest, decision }).setProtectedHeader({ alg: 'EdDSA', kid: who.id }).setIssuedAt(iat).setExpirationTime(iat + 600).sign(who.key);
    };
    const l3 = (reason: string) => CreateGrantBody.parse({ group: 'main', provider: 'ops', level: 3, reason, ttl_s: 3600 });
    const kinds = async (subject: string) => (await tdb.rows<{ kind: string }>(`SELECT kind FROM gov_activities WHERE subject = '${subject}' ORDER BY seq`)).map((r) => r.kind);
    const expectChain = async () => expect(await tdb.verifyChain()).toMatchObject({ ok: true });

    it('creates a grant with its audit row; the same key and body replays it, another body is refused with 422, and nothing more is written', async () => {
      const body = CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 2, reason: 'deploy the api' });
      const first = await createGrant(replicas[0]!, body, 'main', idem('k-create', body));
      expect(first.replayed).toBe(false);
      expect(first.grant).toMatchObject({ group: 'developer', level: 2, status: 'active' });
      const again = await createGrant(replicas[1]!, body, 'main', idem('k-create', body));
      expect(again).toEqual({ grant: first.grant, replayed: true });
      const other = CreateGrantBody.parse({ ...body, reason: 'something else' });
      await expect(createGrant(replicas[2]!, other, 'main', idem('k-create', other))).rejects.toMatchObject({ code: 'idempotency_key_reused', status: 422 });
      // The key is the principal's: another principal's same key makes its own grant.
      const theirs = await createGrant(replicas[2]!, body, 'operator:alice', idem('k-create', body));
      expect(theirs.grant.id).not.toBe(first.grant.id);
      expect(await kinds(first.grant.id)).toEqual(['grant.created']);
      expect(await tdb.count('grants')).toBe(2);
      expect((await getGrant(replicas[1]!, first.grant.id)).timeline.map((t) => t.kind)).toEqual(['grant.created']);
      await expectChain();
    });

    it('12 identical creates with one key over 3 replicas make one grant and one audit row; the rest replay it', async () => {
      const body = CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 1, reason: 'read the logs' });
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => createGrant(replicas[i % 3]!, body, 'main', idem('k-race', body))));
      expect(results.filter((r) => !r.replayed)).toHaveLength(1);
      expect(new Set(results.map((r) => r.grant.id)).size).toBe(1);
      expect(await kinds(results[0]!.grant.id)).toEqual(['grant.created']);
      await expectChain();
    });

    it('one key raced with two bodies over 3 replicas: one grant; the same body replays it, the other is refused with 422', async () => {
      const a = CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 1, reason: 'body a' });
      const b = CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 1, reason: 'body b' });
      const before = await tdb.count('grants');
      const results = await settle(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? createGrant(replicas[i % 3]!, a, 'main', idem('k-two', a)) : createGrant(replicas[i % 3]!, b, 'main', idem('k-two', b)))));
      expect(await tdb.count('grants')).toBe(before + 1);
      const made = results.find((r) => r.status === 'fulfilled' && !r.value.replayed) as PromiseFulfilledResult<{ grant: { reason: string } }>;
      const winner = made.value.grant.reason === 'body a' ? 0 : 1;
      results.forEach((r, i) => expect(codeOf(r)).toBe(i % 2 === winner ? 'ok' : 'idempotency_key_reused'));
      await expectChain();
    });

    it('a refused plan rolls back with no audit row: terms above the ceiling, a revocation of a grant that does not exist', async () => {
      const rows = await tdb.count('gov_activities');
      const grantsBefore = await tdb.count('grants');
      const tooHigh = CreateGrantBody.parse({ group: 'security', provider: 'ops', level: 2, reason: 'too high' });
      await expect(createGrant(replicas[1]!, tooHigh, 'main', idem('k-high', tooHigh))).rejects.toMatchObject({ code: 'level_above_ceiling' });
      await expect(revokeGrant(replicas[2]!, 'grt_missing', 'main', null)).rejects.toMatchObject({ code: 'not_found' });
      expect(await tdb.count('grants')).toBe(grantsBefore);
      expect(await tdb.count('gov_activities')).toBe(rows);
      // The key was never spent: it creates once the body is valid.
      const ok = CreateGrantBody.parse({ group: 'security', provider: 'ops', level: 1, reason: 'now valid' });
      await expect(createGrant(replicas[0]!, ok, 'main', idem('k-high', ok))).resolves.toMatchObject({ replayed: false });
      await expectChain();
    });

    it('when the audit rows cannot be written the change rolls back: 503 audit_unavailable, the grant as it was', async () => {
      const body = CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 1, reason: 'kept' });
      const { grant } = await createGrant(replicas[0]!, body, 'main');
      const grants = await tdb.count('grants');
      const repair = await tdb.breakAudit();
      try {
        const created = createGrant(replicas[1]!, CreateGrantBody.parse({ ...body, reason: 'lost' }), 'main', idem('k-lost', body));
        await expect(created).rejects.toMatchObject({ code: 'audit_unavailable', status: 503 });
        await expect(created.catch((e: { extensions: { cause: string } }) => e.extensions.cause)).resolves.toMatch(/disk says no/);
        await expect(revokeGrant(replicas[2]!, grant.id, 'main', 'x')).rejects.toMatchObject({ code: 'audit_unavailable' });
      } finally {
        await repair();
      }
      expect(await tdb.count('grants')).toBe(grants);
      expect((await getGrant(replicas[0]!, grant.id)).status).toBe('active');
      await expect(createGrant(replicas[1]!, CreateGrantBody.parse({ ...body, reason: 'lost' }), 'main', idem('k-lost', body))).resolves.toMatchObject({ replayed: false });
      await expectChain();
    });

    it('two approvals from two groups racing on two replicas: both recorded, the grant activated exactly once', async () => {
      const { grant } = await createGrant(replicas[0]!, l3('two approvals'), 'main');
      const outcomes = await Promise.all([
        submitApproval(replicas[1]!, grant.id, await sign(dev, grant), 'main'),
        submitApproval(replicas[2]!, grant.id, await sign(sec, grant), 'main'),
      ]);
      expect(outcomes.map((o) => o.outcome).sort()).toEqual(['activated', 'recorded']);
      const after = await getGrant(replicas[0]!, grant.id);
      expect(after.status).toBe('active');
      expect(after.approvals).toHaveLength(2);
      expect((await kinds(grant.id)).sort()).toEqual(['grant.activated', 'grant.approval_recorded', 'grant.approval_recorded', 'grant.created']);
      await expectChain();
    });

    it('the same approval on 3 replicas at once is recorded once and replayed twice; another signature of the same approver is a duplicate, audited', async () => {
      const { grant } = await createGrant(replicas[0]!, l3('one approver'), 'main');
      const jws = await sign(dev, grant);
      const same = await Promise.all(tdb.replicas.map((_, i) => submitApproval(replicas[i]!, grant.id, jws, 'main')));
      expect(same.map((o) => o.outcome).sort()).toEqual(['recorded', 'replayed', 'replayed']);
      const twice = await settle([submitApproval(replicas[1]!, grant.id, await sign(dev, grant, 'approve', 1), 'main'), submitApproval(replicas[2]!, grant.id, await sign(dev, grant, 'approve', 2), 'main')]);
      expect(twice.map(codeOf)).toEqual(['approval_duplicate', 'approval_duplicate']);
      const after = await getGrant(replicas[0]!, grant.id);
      expect(after).toMatchObject({ status: 'pending_approval' });
      expect(after.approvals).toHaveLength(1);
      expect(await kinds(grant.id)).toEqual(['grant.created', 'grant.approval_recorded', 'grant.approval_refused', 'grant.approval_refused']);
      await expectChain();
    });

    it('an approval and a denial racing: exactly one decides, and the grant ends in the state of whichever committed first', async () => {
      const { grant } = await createGrant(replicas[0]!, l3('approve or deny'), 'main');
      const [approve, deny] = await settle([submitApproval(replicas[1]!, grant.id, await sign(dev, grant), 'main'), submitApproval(replicas[2]!, grant.id, await sign(sec, grant, 'deny'), 'main')]);
      const after = await getGrant(replicas[0]!, grant.id);
      expect(deny).toMatchObject({ status: 'fulfilled', value: { outcome: 'rejected' } });
      // Denied first, the approval finds it no longer pending; approved first, it is recorded and the denial rejects it.
      if (approve!.status === 'rejected') expect(codeOf(approve!)).toBe('grant_not_pending');
      else expect(approve!.value.outcome).toBe('recorded');
      expect(after.status).toBe('rejected');
      await expectChain();
    });

    it('two revocations of one grant on 3 replicas: one revokes it, the others find it revoked; one audit row', async () => {
      const { grant } = await createGrant(replicas[0]!, CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 2, reason: 'to revoke' }), 'main');
      const results = await Promise.all(tdb.replicas.map((_, i) => revokeGrant(replicas[i]!, grant.id, 'main', `by ${i}`)));
      expect(results.map((r) => r.changed).sort()).toEqual([false, false, true]);
      expect(await kinds(grant.id)).toEqual(['grant.created', 'grant.revoked']);
      await expectChain();
    });

    it('break-glass on 2 replicas at once revokes each live grant of the group once', async () => {
      const live = await listGrants(replicas[0]!, { group: 'developer', status: 'active' });
      expect(live.items.length).toBeGreaterThan(0);
      const [a, b] = await Promise.all([revokeAllGrants(replicas[1]!, 'developer', 'operator:ops', 'incident'), revokeAllGrants(replicas[2]!, 'developer', 'operator:ops', 'incident')]);
      expect([...a, ...b].sort()).toEqual(live.items.map((g) => g.id).sort());
      expect(Math.min(a.length, b.length)).toBe(0);
      expect((await listGrants(replicas[0]!, { group: 'developer', status: 'active' })).items).toEqual([]);
      const revoked = await tdb.rows<{ n: number | string }>(`SELECT count(*) AS n FROM gov_activities WHERE kind = 'grant.revoked' AND actor = 'operator:ops'`);
      expect(Number(revoked[0]!.n)).toBe(live.items.length);
      await expectChain();
    });

    it('the same approver added on 3 replicas at once is added once; the others get 409 conflict', async () => {
      const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const jwk = await exportJWK(publicKey);
      const results = await settle(replicas.map((d) => addApprover(d, { id: 'Zed', group: 'security', publicJwk: jwk }, 'operator:test')));
      expect(results.map(codeOf).sort()).toEqual(['conflict', 'conflict', 'ok']);
      expect((await replicas[1]!.stores.grants.approvers()).map((a) => a.id)).toEqual(['Zed', 'dana', 'sam']);
      expect(await kinds('approver:Zed')).toEqual(['approver.added']);
      await expectChain();
    });

    it('lists by filter and page, and reads a grant back, as it was written', async () => {
      const page1 = await listGrants(replicas[2]!, { limit: 3 });
      expect(page1.items).toHaveLength(3);
      const page2 = await listGrants(replicas[2]!, { limit: 100, after: page1.nextCursor! });
      const all = await listGrants(replicas[0]!, { limit: 100 });
      expect([...page1.items, ...page2.items].map((g) => g.id)).toEqual(all.items.map((g) => g.id));
      expect(all.items.map((g) => g.id)).toEqual([...all.items.map((g) => g.id)].sort());
      const rejected = await listGrants(replicas[1]!, { status: 'rejected' });
      expect(rejected.items).toHaveLength(1);
      await expectChain();
    });
  });
}

for (const engine of ENGINES) {
  grantStoreBehaviours(engine, engine.name === 'sqlite' ? (h, clock) => sqliteGrantStore(sqliteOf(h), clock) : (h, clock) => pgGrantStore(pgOf(h), clock));
}
