/**
 * Grant renewals and held calls on both engines, three replicas each: an L2 renewal retried under
 * one Idempotency-Key on three replicas at once makes one renewal; an L3 renewal's two approvals
 * racing with a third renew it once; a held call claimed by three replicas at once is claimed
 * once, a second hold of its key is refused, and expired holds are listed; the audit chain
 * verifies after.
 */
import { createHash } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitApproval } from '../../../src/modules/grants/approvals.js';
import { addApprover } from '../../../src/modules/grants/approvers.js';
import { renewGrant } from '../../../src/modules/grants/renewal.js';
import { createGrant, getGrant, type GrantDeps } from '../../../src/modules/grants/service.js';
import { sqliteGrantStore } from '../../../src/modules/grants/store.js';
import { pgGrantStore } from '../../../src/modules/grants/store.pg.js';
import { CreateGrantBody } from '../../../src/modules/grants/terms.js';
import { sqliteCallHoldStore, type CallHoldStore } from '../../../src/modules/calls/approval/store.js';
import { pgCallHoldStore } from '../../../src/modules/calls/approval/store.pg.js';
import { DuplicateClaim } from '../../../src/modules/calls/store.js';
import { Catalog } from '../../../src/modules/calls/catalog.js';
import type { Groups } from '../../../src/modules/identity/groups.js';
import { ManualClock } from '../../../src/platform/clock.js';
import { opsProvider } from '../../grants/helpers.js';
import { tempDir } from '../../helpers/harness.js';
import { ENGINES, pgOf, sqliteOf, type Engine, type TestDatabase } from './engines.js';

const T0 = Date.UTC(2026, 4, 1, 12);
const HOUR = 3600 * 1000;
const GROUPS: Groups = new Map([
  ['main', { name: 'main', ceiling: 3, description: '' }],
  ['developer', { name: 'developer', ceiling: 2, description: '' }],
  ['security', { name: 'security', ceiling: 1, description: '' }],
  ['sre', { name: 'sre', ceiling: 1, description: '' }],
]);

function behaviours(engine: Engine): void {
  describe(`grant renewals and held calls on ${engine.name}`, () => {
    const clock = new ManualClock(T0);
    let tdb: TestDatabase;
    let grants: GrantDeps[];
    let holds: CallHoldStore[];
    const approvers: Record<string, CryptoKey> = {};

    beforeAll(async () => {
      tdb = await engine.open('renewals');
      const config = { pendingGrantTtlS: 3 * 24 * 3600, clockSkewS: 60, policiesDir: tempDir() };
      const catalog = new Catalog([opsProvider()]);
      grants = tdb.replicas.map((h) => ({
        clock,
        groups: GROUPS,
        catalog,
        config,
        stores: { grants: h.engine === 'sqlite' ? sqliteGrantStore(sqliteOf(h), clock) : pgGrantStore(pgOf(h), clock) },
      }));
      holds = tdb.replicas.map((h) => (h.engine === 'sqlite' ? sqliteCallHoldStore(sqliteOf(h), clock) : pgCallHoldStore(pgOf(h), clock)));
      for (const [id, group] of [['sam', 'security'], ['raj', 'sre'], ['dana', 'developer']] as const) {
        const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        await addApprover(grants[0]!, { id, group, publicJwk: await exportJWK(publicKey) }, 'operator:test');
        approvers[id] = privateKey;
      }
    });
    afterAll(async () => {
      expect(await tdb?.verifyChain()).toMatchObject({ ok: true });
      await tdb?.close();
    });

    const sign = (id: string, grant: { id: string; digest: string }) => {
      const iat = Math.floor(clock.now() / 1000);
      return new SignJWT({ grant_id: grant.id, grant_digest: grant.digest, decision: 'approve' }).setProtectedHeader({ alg: 'EdDSA', kid: id }).setIssuedAt(iat).setExpirationTime(iat + 600).sign(approvers[id]!);
    };

    it('one Idempotency-Key retried on three replicas at once renews an L2 grant once', async () => {
      const { grant } = await createGrant(grants[0]!, CreateGrantBody.parse({ group: 'developer', provider: 'ops', level: 2, ttl_s: 3600, reason: 'build' }), 'main');
      const body = { ttl_s: 5 * 3600, reason: 'longer' };
      const key = { key: 'renew-k', requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex') };
      const all = await Promise.all(grants.map((d) => renewGrant(d, grant.id, body, 'operator:olga', key)));
      expect(new Set(all.map((r) => r.renewal.id)).size).toBe(1);
      expect(all.filter((r) => !r.replayed)).toHaveLength(1);
      expect(await tdb.count('grant_renewals')).toBe(1);
      expect((await getGrant(grants[1]!, grant.id)).expires_at).toBe(new Date(T0 + 5 * HOUR).toISOString());
    });

    it("an L3 renewal's approvals racing on three replicas renew it once, from two groups", async () => {
      const { grant } = await createGrant(grants[0]!, CreateGrantBody.parse({ group: 'main', provider: 'ops', level: 3, ttl_s: 3600, reason: 'release' }), 'main');
      await submitApproval(grants[0]!, grant.id, await sign('sam', grant), 'main');
      await submitApproval(grants[0]!, grant.id, await sign('raj', grant), 'main');
      const { renewal } = await renewGrant(grants[1]!, grant.id, { ttl_s: 4 * 3600, reason: 'slipped' }, 'operator:olga');
      const target = { id: grant.id, digest: renewal.digest };
      const jws = await Promise.all(['sam', 'raj', 'dana'].map((id) => sign(id, target)));
      const settled = await Promise.allSettled(jws.map((j, i) => submitApproval(grants[i]!, grant.id, j, 'main')));
      const outcomes = settled.map((r) => (r.status === 'fulfilled' ? r.value.outcome : (r.reason as { code: string }).code));
      expect(outcomes.filter((o) => o === 'renewed')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'recorded')).toHaveLength(1);
      const after = await getGrant(grants[2]!, grant.id);
      expect(after).toMatchObject({ status: 'active', digest: renewal.digest, expires_at: renewal.expires_at, renewal: null });
      expect(after.timeline.filter((e) => e.kind === 'grant.renewed')).toHaveLength(1);
    });

    it('a held call is claimed by one of three replicas; its key cannot be held twice; expired holds are listed', async () => {
      const call = {
        group: 'main',
        requestId: 'held-1',
        fingerprint: 'f'.repeat(64),
        action: 'ops.deploy',
        level: 3,
        resource: 'acme/api',
        summary: 'deploy acme/api',
        taskId: null,
        grantId: 'grt_X',
        receipt: '{}',
        createdAt: clock.now(),
        instanceId: 'i-1',
        httpStatus: 202,
        response: '{"status":"awaiting_approval"}',
      };
      const hold = { group: 'main', requestId: 'held-1', requestDigest: 'd'.repeat(64), body: '{"action":"ops.deploy"}', request: '{}', createdAt: clock.now(), expiresAt: clock.now() + HOUR };
      const audit = { actor: 'main', kind: 'call.held', subject: 'call:main:held-1', detail: {} };
      await holds[0]!.hold(call, hold, audit);
      await expect(holds[1]!.hold(call, hold, audit)).rejects.toBeInstanceOf(DuplicateClaim);
      const claims = await Promise.all(
        holds.map((h, i) =>
          h.change('main', 'held-1', (current) =>
            current?.call.status === 'awaiting_approval'
              ? { write: { call: { status: 'running', instanceId: `i-${i}` } }, audit: [{ actor: 'system', kind: 'call.approved', subject: 'call:main:held-1', detail: {} }], result: true }
              : { result: false },
          ),
        ),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect((await holds[2]!.get('main', 'held-1'))!.call.status).toBe('running');

      await holds[0]!.hold({ ...call, requestId: 'held-2' }, { ...hold, requestId: 'held-2' }, { ...audit, subject: 'call:main:held-2' });
      expect(await holds[1]!.due(clock.now(), 10)).toEqual([]);
      clock.advance(HOUR);
      expect(await holds[1]!.due(clock.now(), 10)).toEqual([{ group: 'main', requestId: 'held-2' }]);
    });
  });
}

for (const engine of ENGINES) behaviours(engine);
